"""Reads of the projections: rolling figures, per-minute series, the processors' health."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet, Sum
from django.utils import timezone

from .aggregates import minute_of
from .models import FraudClearance, FraudFlag, MinuteFigure, ProcessorState, Slot

WINDOWS = (1, 5, 60)


@dataclass
class Figures:
    """The aggregates over the last ``minutes`` minutes of event time, this one included."""

    minutes: int
    since: datetime
    orders_placed: int = 0
    orders_completed: int = 0
    orders_cancelled: dict[str, int] = field(default_factory=dict)
    money_captured: dict[str, Decimal] = field(default_factory=dict)
    money_refunded: dict[str, Decimal] = field(default_factory=dict)
    payments_succeeded: int = 0
    payments_declined: int = 0
    completion_p50: float | None = None
    completion_p95: float | None = None
    units_sold: dict[str, int] = field(default_factory=dict)
    stock_outs: dict[str, int] = field(default_factory=dict)
    late_entries: int = 0

    @property
    def orders_cancelled_total(self) -> int:
        return sum(self.orders_cancelled.values())

    @property
    def decline_rate(self) -> float | None:
        """Declined ÷ tried (succeeded or declined) payments; None when none was tried."""
        tried = self.payments_succeeded + self.payments_declined
        return self.payments_declined / tried if tried else None


def figures(*, minutes: int, now: datetime | None = None, slot: str = Slot.LIVE) -> Figures:
    since = minute_of(now or timezone.now()) - timedelta(minutes=minutes - 1)
    sums = (
        MinuteFigure.objects.filter(slot=slot, minute__gte=since)
        .values_list("metric", "key")
        .annotate(total=Sum("value"))
    )
    by_metric: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for metric, key, total in sums:
        by_metric[metric][key] = total

    def count(metric: str) -> int:
        return int(sum(by_metric[metric].values(), Decimal(0)))

    def counts(metric: str) -> dict[str, int]:
        return {key: int(value) for key, value in sorted(by_metric[metric].items())}

    histogram = by_metric["completion_seconds"]
    return Figures(
        minutes=minutes,
        since=since,
        orders_placed=count("orders_placed"),
        orders_completed=count("orders_completed"),
        orders_cancelled=counts("orders_cancelled"),
        money_captured=dict(sorted(by_metric["money_captured"].items())),
        money_refunded=dict(sorted(by_metric["money_refunded"].items())),
        payments_succeeded=count("payments_succeeded"),
        payments_declined=count("payments_declined"),
        completion_p50=quantile(histogram, 0.50),
        completion_p95=quantile(histogram, 0.95),
        units_sold=dict(sorted(counts("units_sold").items(), key=lambda kv: -kv[1])),
        stock_outs=counts("stock_outs"),
        late_entries=count("late_entries"),
    )


def quantile(histogram: dict[str, Decimal], q: float) -> float | None:
    """A quantile of a histogram whose keys are bucket upper bounds, interpolated in its bucket."""
    buckets = sorted((float(bound), float(n)) for bound, n in histogram.items() if n)
    total = sum(n for _, n in buckets)
    if not total:
        return None
    rank = q * total
    lower, seen = 0.0, 0.0
    for upper, n in buckets:
        if seen + n >= rank:
            return lower + (upper - lower) * ((rank - seen) / n)
        lower, seen = upper, seen + n
    return buckets[-1][0]


def per_minute(
    *, metric: str, minutes: int, now: datetime | None = None, slot: str = Slot.LIVE
) -> list[tuple[datetime, Decimal]]:
    """One metric's total per minute (keys added up), oldest first, a zero where none."""
    last = minute_of(now or timezone.now())
    since = last - timedelta(minutes=minutes - 1)
    totals = dict(
        MinuteFigure.objects.filter(slot=slot, metric=metric, minute__gte=since)
        .values_list("minute")
        .annotate(total=Sum("value"))
        .values_list("minute", "total")
    )
    return [
        (since + timedelta(minutes=i), totals.get(since + timedelta(minutes=i), Decimal(0)))
        for i in range(minutes)
    ]


def processors_status() -> list[ProcessorState]:
    return list(ProcessorState.objects.filter(slot=Slot.LIVE).order_by("processor"))


def fraud_flag_is_cleared(flag: FraudFlag) -> bool:
    return FraudClearance.objects.filter(
        key_kind=flag.key_kind, key=flag.key, cleared_at__gte=flag.fired_at
    ).exists()


def fraud_flags_not_cleared() -> QuerySet[FraudFlag]:
    """The live flags whose card or email staff have not cleared since, latest first.

    The rule of ``fraud_flag_is_cleared``, for many flags in one query.
    """
    cleared = FraudClearance.objects.filter(
        key_kind=OuterRef("key_kind"), key=OuterRef("key"), cleared_at__gte=OuterRef("fired_at")
    )
    return FraudFlag.objects.filter(slot=Slot.LIVE).exclude(Exists(cleared)).order_by("-fired_at")

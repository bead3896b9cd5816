"""The stream processor's aggregates: orders, money, declines and time to complete, per minute.

Read from the live slot of ``analytics.MinuteFigure`` by event time: the last
30 minutes minute by minute (one query), and the rolling 5- and 60-minute
figures as ``analytics.selectors.figures`` adds them up. The processors'
heartbeat and lag say how far behind the figures may be.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from analytics.aggregates import minute_of
from analytics.models import MinuteFigure, Slot
from analytics.runner import HEARTBEAT_INTERVAL
from analytics.selectors import Figures, figures, processors_status, quantile

from .formats import age, amounts, moment

SERIES_MINUTES = 30
SUMMARY_MINUTES = (5, 60)
SERIES_METRICS = (
    "orders_placed",
    "orders_completed",
    "orders_cancelled",
    "money_captured",
    "money_refunded",
    "payments_succeeded",
    "payments_declined",
    "completion_seconds",
)
# A processor that has not beaten for this long is not running (it beats every 5 s).
STALE_AFTER = 3 * HEARTBEAT_INTERVAL


def decline_rate(*, succeeded: int, declined: int) -> float | None:
    """Declined ÷ tried payments, as ``Figures.decline_rate``; None when none was tried."""
    tried = succeeded + declined
    return declined / tried if tried else None


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 3) if seconds is not None else None


def series(*, now: datetime, minutes: int = SERIES_MINUTES) -> list[dict]:
    """One row per minute of the last ``minutes`` (this one included), oldest first."""
    last = minute_of(now)
    since = last - timedelta(minutes=minutes - 1)
    rows = MinuteFigure.objects.filter(
        slot=Slot.LIVE, metric__in=SERIES_METRICS, minute__gte=since
    ).values_list("minute", "metric", "key", "value")
    by_minute: dict[datetime, dict[str, dict[str, Decimal]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for minute, metric, key, value in rows:
        by_minute[minute][metric][key] = value

    def count(figure: dict[str, dict[str, Decimal]], metric: str) -> int:
        return int(sum(figure[metric].values(), Decimal(0)))

    result = []
    for i in range(minutes):
        minute = since + timedelta(minutes=i)
        figure = by_minute[minute]
        histogram = figure["completion_seconds"]
        result.append(
            {
                "minute": moment(minute),
                "orders_placed": count(figure, "orders_placed"),
                "orders_completed": count(figure, "orders_completed"),
                "orders_cancelled": count(figure, "orders_cancelled"),
                "money_captured": amounts(figure["money_captured"]),
                "money_refunded": amounts(figure["money_refunded"]),
                "payments_succeeded": count(figure, "payments_succeeded"),
                "payments_declined": count(figure, "payments_declined"),
                "decline_rate": decline_rate(
                    succeeded=count(figure, "payments_succeeded"),
                    declined=count(figure, "payments_declined"),
                ),
                "completion_p50": _rounded(quantile(histogram, 0.50)),
                "completion_p95": _rounded(quantile(histogram, 0.95)),
            }
        )
    return result


def summary(found: Figures) -> dict:
    """The rolling figures of one window, as JSON."""
    return {
        "minutes": found.minutes,
        "since": moment(found.since),
        "orders_placed": found.orders_placed,
        "orders_completed": found.orders_completed,
        "orders_cancelled": found.orders_cancelled_total,
        "orders_cancelled_by_reason": found.orders_cancelled,
        "money_captured": amounts(found.money_captured),
        "money_refunded": amounts(found.money_refunded),
        "payments_succeeded": found.payments_succeeded,
        "payments_declined": found.payments_declined,
        "decline_rate": found.decline_rate,
        "completion_p50": _rounded(found.completion_p50),
        "completion_p95": _rounded(found.completion_p95),
        "late_entries": found.late_entries,
    }


def summaries(*, now: datetime) -> dict[str, dict]:
    """The rolling 5- and 60-minute figures, keyed "5m" and "60m"."""
    return {f"{n}m": summary(figures(minutes=n, now=now)) for n in SUMMARY_MINUTES}


def processors(*, now: datetime) -> list[dict]:
    """Each stream processor's position, lag and heartbeat: whether the figures are current."""
    return [
        {
            "processor": state.processor,
            "offset": state.offset,
            "entries_processed": state.entries_processed,
            "lag_entries": state.lag_entries,
            "lag_seconds": round(state.lag_seconds, 1),
            "last_entry_occurred_at": moment(state.last_entry_occurred_at),
            "heartbeat_at": moment(state.heartbeat_at),
            "heartbeat_age_seconds": age(state.heartbeat_at, now),
            "is_stale": state.heartbeat_at is None
            or (now - state.heartbeat_at).total_seconds() > STALE_AFTER,
            "last_error": state.last_error,
            "last_error_at": moment(state.last_error_at),
        }
        for state in processors_status()
    ]


def business(*, now: datetime) -> dict:
    """The last minutes one by one and the rolling windows; ``currency`` is the shop's own."""
    return {
        "currency": settings.SHOP_CURRENCY,
        "series_minutes": SERIES_MINUTES,
        "per_minute": series(now=now),
        "summary": summaries(now=now),
    }

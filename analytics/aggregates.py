"""Live aggregates by event time: orders, money, declines, time to complete, units, stock-outs.

Each entry adds to the figures of the minute it occurred in (its envelope's
``occurred_at``), whatever minute it is read in; rolling 5- and 60-minute
figures are those minutes added up (``analytics.selectors``). The watermark
is the latest event time seen; a minute is final once the watermark is
ANALYTICS_ALLOWED_LATENESS past its end. An entry for a minute already final
(a message the relay sent long after it was committed) still counts in its
own minute, and also in ``late_entries``, so that a figure that changed
after it was final says so.
"""

from __future__ import annotations

import bisect
import functools
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from inventory.events import InventoryReservationFailed
from messaging.sql import quoted_names
from orders.events import OrderCancelled, OrderCompleted, OrderPlaced
from payments.events import PaymentFailed, PaymentProcessed, PaymentRefunded

from .models import MinuteFigure, OpenOrder
from .processing import Item, Processor

# A payment that failed for one of these reasons was declined by the card's issuer.
DECLINE_CODES = frozenset({"card_declined", "insufficient_funds"})

# Upper bounds (seconds) of the placed-to-completed histogram: 20% apart,
# from 50 ms to about five days (0.05 * 1.2**88 s, 5.4 days), so a
# percentile read off it is within 20%.
DURATION_BOUNDS = tuple(round(0.05 * 1.2**k, 3) for k in range(89))


def duration_bucket(seconds: float) -> str:
    """The histogram bucket a duration falls in: the smallest bound not below it, as text.

    A duration beyond the last bound is in the last bucket.
    """
    k = min(len(DURATION_BOUNDS) - 1, bisect.bisect_left(DURATION_BOUNDS, seconds))
    return f"{DURATION_BOUNDS[k]:g}"


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class Aggregates(Processor):
    name = "aggregates"
    message_classes = (
        OrderPlaced,
        OrderCompleted,
        OrderCancelled,
        PaymentProcessed,
        PaymentFailed,
        PaymentRefunded,
        InventoryReservationFailed,
    )
    models = (MinuteFigure, OpenOrder)

    def process(self, items: list[Item]) -> None:
        # Counts are ints, amounts Decimals; both become a figure's Decimal when saved.
        self.deltas: dict[tuple[datetime, str, str], Decimal | int] = defaultdict(int)
        watermark = self.state.get("watermark")
        self.lateness = timedelta(seconds=settings.ANALYTICS_ALLOWED_LATENESS)
        self._watermark_at(parse_datetime(watermark) if watermark else None)
        # Order id -> (placed at, units per SKU), of the orders open when it ends.
        self.open_orders = self._open_orders(items)
        self.placed: dict = {}
        self.ended: set = set()
        for item in items:
            self._take(item)
        if self.watermark is not None:
            self.state["watermark"] = self.watermark.isoformat()
        self._save_open_orders()
        self._save_figures()

    def _watermark_at(self, watermark: datetime | None) -> None:
        self.watermark = watermark
        # Minutes up to this one are final: an entry for them is late.
        self.final_up_to = (
            watermark - self.lateness - timedelta(minutes=1) if watermark is not None else None
        )

    def _take(self, item: Item) -> None:
        occurred = item.envelope.occurred_at
        minute = minute_of(occurred)
        if self.final_up_to is not None and minute <= self.final_up_to:
            self._add(minute, "late_entries")
        if self.watermark is None or occurred > self.watermark:
            self._watermark_at(occurred)
        message = item.message
        match message:
            case OrderPlaced():
                self._add(minute, "orders_placed")
                units: dict[str, int] = defaultdict(int)
                for line in message.lines:
                    units[line.sku] += line.quantity
                order = (occurred, dict(units))
                self.open_orders[message.order_id] = order
                self.placed[message.order_id] = order
            case OrderCompleted():
                self._add(minute, "orders_completed")
                order = self.open_orders.pop(message.order_id, None)
                self.ended.add(message.order_id)
                if order is not None:
                    placed_at, units = order
                    seconds = max(0.0, (occurred - placed_at).total_seconds())
                    self._add(minute, "completion_seconds", duration_bucket(seconds))
                    self._add(minute, "completion_seconds_sum", value=Decimal(f"{seconds:.2f}"))
                    for sku, quantity in units.items():
                        self._add(minute, "units_sold", sku, quantity)
            case OrderCancelled():
                self._add(minute, "orders_cancelled", message.reason_code)
                self.open_orders.pop(message.order_id, None)
                self.ended.add(message.order_id)
            case PaymentProcessed():
                self._add(minute, "payments_succeeded")
                self._add(minute, "money_captured", message.currency, message.amount)
            case PaymentFailed():
                self._add(minute, "payments_failed", message.reason_code)
                if message.reason_code in DECLINE_CODES:
                    self._add(minute, "payments_declined")
            case PaymentRefunded():
                self._add(minute, "money_refunded", message.currency, message.amount)
            case InventoryReservationFailed():
                for short in message.short:
                    self._add(minute, "stock_outs", short.sku)

    def _add(self, minute: datetime, metric: str, key: str = "", value: Decimal | int = 1) -> None:
        self.deltas[(minute, metric, key)] += value

    def _open_orders(self, items: list[Item]) -> dict:
        placed_here = {
            item.message.order_id for item in items if isinstance(item.message, OrderPlaced)
        }
        ending = {
            item.message.order_id
            for item in items
            if isinstance(item.message, (OrderCompleted, OrderCancelled))
        } - placed_here
        if not ending:
            return {}
        found = OpenOrder.objects.filter(slot=self.slot, order_id__in=ending)
        return {
            order_id: (placed_at, units)
            for order_id, placed_at, units in found.values_list("order_id", "placed_at", "units")
        }

    def _save_open_orders(self) -> None:
        # Only orders placed before this batch can have a row to delete.
        stored = self.ended - self.placed.keys()
        if stored:
            OpenOrder.objects.filter(slot=self.slot, order_id__in=stored).delete()
        OpenOrder.objects.bulk_create(
            OpenOrder(slot=self.slot, order_id=order_id, placed_at=placed_at, units=units)
            for order_id, (placed_at, units) in self.placed.items()
            if order_id not in self.ended
        )

    def _save_figures(self) -> None:
        if not self.deltas:
            return
        if connection.vendor == "postgresql":
            self._add_to_figures()
            return
        minutes = {minute for minute, _, _ in self.deltas}
        metrics = {metric for _, metric, _ in self.deltas}
        existing = {
            (row.minute, row.metric, row.key): row
            for row in MinuteFigure.objects.filter(
                slot=self.slot, minute__in=minutes, metric__in=metrics
            )
        }
        changed, new = [], []
        for (minute, metric, key), delta in self.deltas.items():
            row = existing.get((minute, metric, key))
            if row is None:
                new.append(
                    MinuteFigure(
                        slot=self.slot, minute=minute, metric=metric, key=key, value=Decimal(delta)
                    )
                )
            else:
                row.value += delta
                changed.append(row)
        MinuteFigure.objects.bulk_update(changed, ["value"], batch_size=500)
        MinuteFigure.objects.bulk_create(new, batch_size=500)

    def _add_to_figures(self) -> None:
        """Every delta added to its figure (made at 0 if new) in one statement."""
        minutes, metrics, keys, values = [], [], [], []
        for (minute, metric, key), delta in self.deltas.items():
            minutes.append(minute)
            metrics.append(metric)
            keys.append(key)
            values.append(Decimal(delta))
        with connection.cursor() as cursor:
            cursor.execute(_add_to_figures_sql(), [self.slot, minutes, metrics, keys, values])


@functools.cache
def _add_to_figures_sql() -> str:
    table, column = quoted_names(MinuteFigure)
    slot, minute, metric, key, value = (
        column[name] for name in ("slot", "minute", "metric", "key", "value")
    )
    return (
        f"INSERT INTO {table} ({slot}, {minute}, {metric}, {key}, {value}) "
        "SELECT %s, d.minute, d.metric, d.key, d.value FROM unnest("
        "%s::timestamptz[], %s::varchar[], %s::varchar[], %s::numeric[]"
        ") AS d(minute, metric, key, value) "
        f"ON CONFLICT ({slot}, {minute}, {metric}, {key}) "
        f"DO UPDATE SET {value} = {table}.{value} + EXCLUDED.{value}"
    )

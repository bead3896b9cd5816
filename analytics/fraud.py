"""The fraud screen: velocity per card fingerprint and per customer email, keyed and by event time.

For every order placed it counts, since the key was last cleared by staff,
the orders of the same card and of the same email it has read within
FRAUD_WINDOW_SECONDS of the order (either side: the log holds events in the
order they committed, and a concurrent request's may come first though its
clock says a moment later), and their declined payments within the window
before it. More than
FRAUD_MAX_ORDERS orders, this one included (the 6th within 10 minutes, by
default), or more than FRAUD_MAX_DECLINES declines before it (after the 4th),
and the order is suspected. Either way it publishes ``OrderScreened``, and
payments charges an order only once it was cleared. A suspected order counts
towards the next ones too.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings

from messaging.context import handling
from messaging.publishing import publish
from orders.events import OrderPlaced
from payments.events import PaymentFailed

from .aggregates import DECLINE_CODES
from .events import OrderScreened, Verdict
from .models import FraudClearance, FraudFlag, FraudObservation, KeyKind, ScreenedOrder
from .processing import Item, Processor

Kind = FraudObservation.Kind

RULE_WORDS = {
    ("card", Kind.ORDER): ("orders_per_card", "orders from this card"),
    ("email", Kind.ORDER): ("orders_per_email", "orders from this email address"),
    ("card", Kind.DECLINE): ("declines_per_card", "declined payments on this card"),
    ("email", Kind.DECLINE): ("declines_per_email", "declined payments for this email address"),
}


@dataclass(frozen=True)
class Fired:
    rule: str
    key_kind: str
    key: str
    count: int
    limit: int
    reason: str


def window_words(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour{'s' if seconds != 3600 else ''}"
    if seconds % 60 == 0:
        return f"{seconds // 60} minute{'s' if seconds != 60 else ''}"
    return f"{seconds} seconds"


Key = tuple[str, str]


class FraudScreen(Processor):
    """Keeps, per key, the recent orders and declines in memory, read once from its tables.

    The memory holds only what its own committed batches wrote (a runner whose
    batch fails, or that is fenced, starts again with a new processor), so a
    batch costs a few queries however many orders it holds.
    """

    name = "fraud"
    message_classes = (OrderPlaced, PaymentFailed)
    models = (FraudObservation, ScreenedOrder, FraudFlag)
    # Payments waits for the verdict: a batch is what has arrived, no more.
    batch_seconds = 0.0

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # key -> (occurred_at, kind) of its observations within the window, in time order.
        self.recent: dict[Key, list[tuple[datetime, str]]] = {}

    def process(self, items: list[Item]) -> None:
        self.window = timedelta(seconds=settings.FRAUD_WINDOW_SECONDS)
        self.lateness = timedelta(seconds=settings.ANALYTICS_ALLOWED_LATENESS)
        self.limits = {
            Kind.ORDER: settings.FRAUD_MAX_ORDERS,
            Kind.DECLINE: settings.FRAUD_MAX_DECLINES,
        }
        self.screened: list[ScreenedOrder] = []
        self.observations: list[FraudObservation] = []
        self.flags: list[FraudFlag] = []
        parties = self._parties(items)
        self._load(items, parties)
        self.cleared = self._clearances(items, parties)
        for item in items:
            match item.message:
                case OrderPlaced() as order:
                    self._screen(item, order, parties)
                case PaymentFailed() as failed if failed.reason_code in DECLINE_CODES:
                    self._decline(item, failed, parties)
        ScreenedOrder.objects.bulk_create(self.screened)
        FraudObservation.objects.bulk_create(self.observations)
        FraudFlag.objects.bulk_create(self.flags)

    @staticmethod
    def _keys(email: str, fingerprint: str) -> list[Key]:
        keys = [(KeyKind.EMAIL.value, email.strip().lower())]
        if fingerprint:
            keys.insert(0, (KeyKind.CARD.value, fingerprint))
        return keys

    def _parties(self, items: list[Item]) -> dict[UUID, list[Key]]:
        """Order id -> its keys: of the orders placed in this batch, and of those declined in it."""
        parties = {
            item.message.order_id: self._keys(item.message.email, item.message.card_fingerprint)
            for item in items
            if isinstance(item.message, OrderPlaced)
        }
        declined = {
            item.message.order_id
            for item in items
            if isinstance(item.message, PaymentFailed) and item.message.order_id not in parties
        }
        if declined:
            for order_id, email, fingerprint in ScreenedOrder.objects.filter(
                slot=self.slot, order_id__in=declined
            ).values_list("order_id", "email", "card_fingerprint"):
                parties[order_id] = self._keys(email, fingerprint)
        return parties

    def _load(self, items: list[Item], parties: dict[UUID, list[Key]]) -> None:
        """Read the recent observations of the keys this batch touches and memory lacks."""
        missing = {key for keys in parties.values() for key in keys if key not in self.recent}
        if not missing:
            return
        since = min(item.envelope.occurred_at for item in items) - self.window
        for kind in {k for k, _ in missing}:
            keys = [key for k, key in missing if k == kind]
            rows = FraudObservation.objects.filter(
                slot=self.slot, key_kind=kind, key__in=keys, occurred_at__gt=since
            ).values_list("key", "occurred_at", "kind")
            for key in keys:
                self.recent[(kind, key)] = []
            for key, occurred_at, observed in rows.order_by("occurred_at", "id"):
                self.recent[(kind, key)].append((occurred_at, observed))

    def _clearances(self, items: list[Item], parties: dict[UUID, list[Key]]) -> dict[Key, list]:
        """Key -> the times staff cleared it, oldest first (few, and read every batch)."""
        keys = {key for keys in parties.values() for key in keys}
        if not keys:
            return {}
        latest = max(item.envelope.occurred_at for item in items)
        cleared: dict[Key, list] = {}
        for kind, key, cleared_at in (
            FraudClearance.objects.filter(
                key_kind__in={k for k, _ in keys}, key__in={key for _, key in keys}
            )
            .filter(cleared_at__lte=latest)
            .order_by("cleared_at")
            .values_list("key_kind", "key", "cleared_at")
        ):
            cleared.setdefault((kind, key), []).append(cleared_at)
        return cleared

    def _observe(self, key: Key, kind: str, order_id: UUID, occurred_at: datetime) -> None:
        self.observations.append(
            FraudObservation(
                slot=self.slot, key_kind=key[0], key=key[1], kind=kind, order_id=order_id,
                occurred_at=occurred_at,
            )
        )  # fmt: skip
        recent = self.recent.setdefault(key, [])
        bisect.insort(recent, (occurred_at, kind))
        # What has left the window of every order to come, late ones (up to
        # ANALYTICS_ALLOWED_LATENESS) included, is forgotten.
        horizon = recent[-1][0] - self.window - self.lateness
        while recent and recent[0][0] <= horizon:
            recent.pop(0)

    def _screen(self, item: Item, order: OrderPlaced, parties: dict[UUID, list[Key]]) -> None:
        placed_at = item.envelope.occurred_at
        keys = parties[order.order_id]
        fired = self._first_rule_fired(keys, placed_at)
        verdict = Verdict.SUSPECTED_FRAUD if fired else Verdict.CLEARED
        self.screened.append(
            ScreenedOrder(
                slot=self.slot,
                order_id=order.order_id,
                email=order.email.strip().lower(),
                card_fingerprint=order.card_fingerprint,
                placed_at=placed_at,
                verdict=verdict,
            )
        )
        for key in keys:
            self._observe(key, Kind.ORDER, order.order_id, placed_at)
        if fired:
            self.flags.append(
                FraudFlag(
                    slot=self.slot,
                    order_id=order.order_id,
                    rule=fired.rule,
                    key_kind=fired.key_kind,
                    key=fired.key,
                    count=fired.count,
                    limit=fired.limit,
                    window_seconds=settings.FRAUD_WINDOW_SECONDS,
                    reason=fired.reason,
                    fired_at=placed_at,
                )
            )
        if not self.replaying:  # a replay rebuilds the projection, and publishes nothing
            with handling(item.envelope):
                publish(
                    OrderScreened(
                        order_id=order.order_id,
                        verdict=verdict,
                        rule=fired.rule if fired else "",
                        reason=fired.reason if fired else "",
                        workflow=order.workflow,
                    )
                )

    def _first_rule_fired(self, keys: list[Key], placed_at: datetime) -> Fired | None:
        window = settings.FRAUD_WINDOW_SECONDS
        for key in keys:
            since = placed_at - self.window
            cleared = [t for t in self.cleared.get(key, []) if t <= placed_at]
            if cleared and cleared[-1] > since:
                since = cleared[-1]
            # The orders already read within the window either side of this one:
            # concurrent requests reach the log in the order they commit, not in
            # that of their clocks, and one stamped a moment later but read first
            # is in the same burst. Declines count only before the order.
            until: dict[str, datetime] = {
                Kind.ORDER: placed_at + self.window,
                Kind.DECLINE: placed_at,
            }
            counted: dict[str, int] = {Kind.ORDER: 0, Kind.DECLINE: 0}
            for occurred_at, kind in self.recent.get(key, []):
                if since < occurred_at and (
                    occurred_at < until[kind] if kind == Kind.ORDER else occurred_at <= until[kind]
                ):
                    counted[kind] += 1
            # This order is one of the orders within the window; its own
            # payment has not been tried yet, so only earlier declines count.
            for kind, count in (
                (Kind.ORDER, counted[Kind.ORDER] + 1),
                (Kind.DECLINE, counted[Kind.DECLINE]),
            ):
                if count > self.limits[kind]:
                    rule, words = RULE_WORDS[(key[0], kind)]
                    return Fired(
                        rule=rule,
                        key_kind=key[0],
                        key=key[1],
                        count=count,
                        limit=self.limits[kind],
                        reason=(
                            f"Suspected fraud: {count} {words} within {window_words(window)} "
                            f"(more than {self.limits[kind]} allowed); nothing was charged"
                        ),
                    )
        return None

    def _decline(self, item: Item, failed: PaymentFailed, parties: dict[UUID, list[Key]]) -> None:
        keys = parties.get(failed.order_id)
        if keys is None:
            return  # an order placed before the log began: nobody to count it against
        for key in keys:
            self._observe(key, Kind.DECLINE, failed.order_id, item.envelope.occurred_at)

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

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q

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


class FraudScreen(Processor):
    name = "fraud"
    message_classes = (OrderPlaced, PaymentFailed)
    models = (FraudObservation, ScreenedOrder, FraudFlag)
    # Payments waits for the verdict: batches are cut short.
    batch_seconds = 0.02

    def process(self, items: list[Item]) -> None:
        for item in items:
            match item.message:
                case OrderPlaced():
                    self._screen(item)
                case PaymentFailed() if item.message.reason_code in DECLINE_CODES:
                    self._decline(item)

    def _keys(self, email: str, fingerprint: str) -> list[tuple[str, str]]:
        keys = [(KeyKind.EMAIL.value, email.strip().lower())]
        if fingerprint:
            keys.insert(0, (KeyKind.CARD.value, fingerprint))
        return keys

    def _screen(self, item: Item) -> None:
        order: OrderPlaced = item.message
        placed_at = item.envelope.occurred_at
        keys = self._keys(order.email, order.card_fingerprint)
        fired = self._first_rule_fired(keys, placed_at)
        verdict = Verdict.SUSPECTED_FRAUD if fired else Verdict.CLEARED
        ScreenedOrder.objects.create(
            slot=self.slot,
            order_id=order.order_id,
            email=order.email.strip().lower(),
            card_fingerprint=order.card_fingerprint,
            placed_at=placed_at,
            verdict=verdict,
        )
        FraudObservation.objects.bulk_create(
            FraudObservation(
                slot=self.slot,
                key_kind=kind,
                key=key,
                kind=Kind.ORDER,
                order_id=order.order_id,
                occurred_at=placed_at,
            )
            for kind, key in keys
        )
        if fired:
            FraudFlag.objects.create(
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

    def _first_rule_fired(self, keys: list[tuple[str, str]], placed_at: datetime) -> Fired | None:
        window = settings.FRAUD_WINDOW_SECONDS
        limits = {Kind.ORDER: settings.FRAUD_MAX_ORDERS, Kind.DECLINE: settings.FRAUD_MAX_DECLINES}
        for key_kind, key in keys:
            since = placed_at - timedelta(seconds=window)
            cleared = FraudClearance.objects.filter(
                key_kind=key_kind, key=key, cleared_at__lte=placed_at
            ).aggregate(last=Max("cleared_at"))["last"]
            if cleared and cleared > since:
                since = cleared
            # The orders already read within the window either side of this one:
            # concurrent requests reach the log in the order they commit, not in
            # that of their clocks, and one stamped a moment later but read first
            # is in the same burst. Declines count only before the order.
            counts = FraudObservation.objects.filter(
                slot=self.slot,
                key_kind=key_kind,
                key=key,
                occurred_at__gt=since,
                occurred_at__lt=placed_at + timedelta(seconds=window),
            ).aggregate(
                orders=Count("id", filter=Q(kind=Kind.ORDER)),
                declines=Count("id", filter=Q(kind=Kind.DECLINE, occurred_at__lte=placed_at)),
            )
            # This order is one of the orders within the window; its own
            # payment has not been tried yet, so only earlier declines count.
            for kind, count in (
                (Kind.ORDER, counts["orders"] + 1),
                (Kind.DECLINE, counts["declines"]),
            ):
                if count > limits[kind]:
                    rule, words = RULE_WORDS[(key_kind, kind)]
                    return Fired(
                        rule=rule,
                        key_kind=key_kind,
                        key=key,
                        count=count,
                        limit=limits[kind],
                        reason=(
                            f"Suspected fraud: {count} {words} within {window_words(window)} "
                            f"(more than {limits[kind]} allowed); nothing was charged"
                        ),
                    )
        return None

    def _decline(self, item: Item) -> None:
        screened = ScreenedOrder.objects.filter(
            slot=self.slot, order_id=item.message.order_id
        ).first()
        if screened is None:
            return  # an order placed before the log began: nobody to count it against
        FraudObservation.objects.bulk_create(
            FraudObservation(
                slot=self.slot,
                key_kind=kind,
                key=key,
                kind=Kind.DECLINE,
                order_id=screened.order_id,
                occurred_at=item.envelope.occurred_at,
            )
            for kind, key in self._keys(screened.email, screened.card_fingerprint)
        )

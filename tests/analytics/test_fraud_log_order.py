"""The fraud screen counts the orders it has read, in the log's order, whatever their clocks say.

Concurrent requests each stamp their OrderPlaced, then commit: they reach the
log in the order they commit, which need not be the order of their
timestamps. A burst from one card must be counted whole all the same.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.events import Verdict
from analytics.fraud import FraudScreen
from analytics.models import FraudFlag, ScreenedOrder
from analytics.processing import Item
from payments.events import PaymentFailed
from tests.support.envelopes import envelope_of
from tests.support.order_messages import OrderPlacedFactory

pytestmark = pytest.mark.django_db

CARD = "fp_burst_card"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.FRAUD_MAX_ORDERS = 3
    settings.FRAUD_MAX_DECLINES = 1
    settings.FRAUD_WINDOW_SECONDS = 600


def logged(offset: int, message, at) -> Item:
    """An entry of the log: its message, stamped ``at`` by the process that published it."""
    envelope = envelope_of(message).model_copy(update={"occurred_at": at})
    return Item(offset, envelope, message)


def verdicts(orders) -> list[str]:
    by_order = dict(ScreenedOrder.objects.values_list("order_id", "verdict"))
    return [by_order[order.order_id] for order in orders]


@pytest.mark.parametrize("batches", ["one batch", "one entry at a time"])
def test_a_burst_logged_against_its_clocks_is_counted_whole(batches):
    # Given five orders from one card within half a second, whose requests committed
    # in the reverse order of their clocks (each email its own: only the card counts)
    start = timezone.now()
    orders = [
        OrderPlacedFactory(card_fingerprint=CARD, email=f"burst-{n}@example.com") for n in range(5)
    ]
    items = [
        logged(offset, order, start - timedelta(milliseconds=100 * offset))
        for offset, order in enumerate(orders)
    ]

    # When the fraud screen reads them in the log's order
    screen = FraudScreen()
    for chunk in [items] if batches == "one batch" else [[item] for item in items]:
        screen.process(chunk)

    # Then every order after the third it read is suspected: five orders within a second
    assert verdicts(orders) == [Verdict.CLEARED] * 3 + [Verdict.SUSPECTED_FRAUD] * 2
    assert list(FraudFlag.objects.order_by("count").values_list("rule", "count", "limit")) == [
        ("orders_per_card", 4, 3),
        ("orders_per_card", 5, 3),
    ]


def test_orders_a_window_away_either_side_do_not_count():
    # Given three orders from one card read first, stamped a window after the next one
    start = timezone.now()
    later = [
        OrderPlacedFactory(card_fingerprint=CARD, email=f"l-{n}@example.com") for n in range(3)
    ]
    screen = FraudScreen()
    screen.process(
        [logged(n, order, start + timedelta(seconds=600)) for n, order in enumerate(later)]
    )

    # When an order from the card stamped a whole window earlier is read after them
    early = OrderPlacedFactory(card_fingerprint=CARD, email="early@example.com")
    screen.process([logged(3, early, start)])

    # Then they are not within its window: it is cleared
    assert verdicts([early]) == [Verdict.CLEARED]


def declined(order) -> PaymentFailed:
    return PaymentFailed(
        order_id=order.order_id, reason_code="card_declined", reason="Your card was declined."
    )


def test_declines_count_for_the_orders_placed_after_them_only(settings):
    settings.FRAUD_MAX_ORDERS = 10
    # Given two orders from one card, each declined a minute later
    start = timezone.now()
    first, second, between, after = (
        OrderPlacedFactory(card_fingerprint=CARD, email=f"d-{n}@example.com") for n in range(4)
    )
    screen = FraudScreen()
    screen.process(
        [
            logged(0, first, start),
            logged(1, second, start + timedelta(seconds=1)),
            logged(2, declined(first), start + timedelta(seconds=60)),
            logged(3, declined(second), start + timedelta(seconds=61)),
        ]
    )

    # When an order stamped before the declines is read after them, and then one after them
    screen.process(
        [
            logged(4, between, start + timedelta(seconds=30)),
            logged(5, after, start + timedelta(seconds=120)),
        ]
    )

    # Then the declines do not count for the first (its payment was tried before they came),
    # and the next is suspected: two declines before it, one allowed
    assert verdicts([between, after]) == [Verdict.CLEARED, Verdict.SUSPECTED_FRAUD]
    assert FraudFlag.objects.get().rule == "declines_per_card"

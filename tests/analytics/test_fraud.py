"""The fraud screen: velocity per card and per email within the window, since the last clearance."""

from datetime import timedelta

import factory
import pytest
from django.utils import timezone

from analytics.fraud import FraudScreen
from analytics.models import FraudFlag, FraudObservation, ScreenedOrder, Slot
from messaging.models import OutboxMessage
from tests.analytics.factories import FraudClearanceFactory, PaymentFailedFactory
from tests.analytics.log import logged, take
from tests.support.order_messages import OrderPlacedFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table_log")]

MAX_ORDERS = 5
MAX_DECLINES = 3
WINDOW = timedelta(minutes=10)


@pytest.fixture(autouse=True)
def limits(settings):
    settings.FRAUD_MAX_ORDERS = MAX_ORDERS
    settings.FRAUD_MAX_DECLINES = MAX_DECLINES
    settings.FRAUD_WINDOW_SECONDS = int(WINDOW.total_seconds())


@pytest.fixture
def start():
    return timezone.now() - timedelta(hours=2)


def place(count: int, *, at, step=timedelta(seconds=1), **order) -> list:
    """``count`` orders, ``step`` apart from ``at`` on; their OrderPlaced messages."""
    placed = [OrderPlacedFactory(**order) for _ in range(count)]
    for n, message in enumerate(placed):
        logged(message, at=at + n * step)
    return placed


def verdicts() -> list[str]:
    """The verdicts OrderScreened published, in the order the orders were placed."""
    return [
        row.payload["verdict"]
        for row in OutboxMessage.objects.filter(type="OrderScreened").order_by("id")
    ]


def screened(order_id) -> dict:
    [row] = OutboxMessage.objects.filter(type="OrderScreened", payload__order_id=str(order_id))
    return row.payload


# One card used with several emails; one email (in any case) with several cards.
SAME_CARD = {
    "card_fingerprint": "fp_card",
    "email": factory.Sequence(lambda n: f"customer{n}@example.com"),
}
SAME_EMAIL = {
    "email": factory.Iterator(["Ada@Example.com", "ada@example.com", " ADA@example.com "]),
    "card_fingerprint": factory.Sequence(lambda n: f"fp_{n}"),
}


@pytest.mark.parametrize(("key", "order"), [("card", SAME_CARD), ("email", SAME_EMAIL)])
def test_the_order_past_the_limit_is_suspected_and_the_one_at_it_is_not(start, key, order):
    # given as many orders as allowed from one card, or from one email
    placed = place(MAX_ORDERS, at=start, **order)
    take(FraudScreen)
    assert verdicts() == ["cleared"] * MAX_ORDERS
    # when one more order comes from it
    [past] = place(1, at=start + timedelta(minutes=1), **order)
    take(FraudScreen)
    # then that one is suspected, with the numbers behind it
    words = "orders from this card" if key == "card" else "orders from this email address"
    assert screened(past.order_id) == {
        "order_id": str(past.order_id),
        "verdict": "suspected_fraud",
        "rule": f"orders_per_{key}",
        "reason": (
            f"Suspected fraud: {MAX_ORDERS + 1} {words} within 10 minutes "
            f"(more than {MAX_ORDERS} allowed); nothing was charged"
        ),
        "workflow": past.workflow.value,
    }
    flag = FraudFlag.objects.get(order_id=past.order_id)
    assert (flag.rule, flag.key_kind, flag.count, flag.limit) == (
        f"orders_per_{key}",
        key,
        MAX_ORDERS + 1,
        MAX_ORDERS,
    )
    assert ScreenedOrder.objects.get(order_id=past.order_id).verdict == "suspected_fraud"
    assert all(
        ScreenedOrder.objects.get(order_id=order.order_id).verdict == "cleared" for order in placed
    )


def test_orders_of_other_cards_and_emails_do_not_count(start):
    place(MAX_ORDERS, at=start, card_fingerprint="fp_other", email="other@example.com")
    [mine] = place(1, at=start + timedelta(seconds=30), card_fingerprint="fp_mine")
    take(FraudScreen)
    assert screened(mine.order_id)["verdict"] == "cleared"


def test_a_suspected_order_counts_towards_the_next(start):
    place(MAX_ORDERS + 2, at=start, card_fingerprint="fp_card", email="a@example.com")
    take(FraudScreen)
    assert verdicts() == ["cleared"] * MAX_ORDERS + ["suspected_fraud"] * 2
    counts = FraudFlag.objects.order_by("count").values_list("count", flat=True)
    assert list(counts) == [MAX_ORDERS + 1, MAX_ORDERS + 2]


def test_orders_one_window_or_more_apart_do_not_count(start):
    # given the allowed orders, the first one exactly a window before the next order
    place(1, at=start, card_fingerprint="fp_card")
    place(MAX_ORDERS - 1, at=start + timedelta(minutes=1), card_fingerprint="fp_card")
    # when the next one comes exactly a window after the first
    [edge] = place(1, at=start + WINDOW, card_fingerprint="fp_card")
    # and one more a second later
    [inside] = place(1, at=start + WINDOW + timedelta(seconds=1), card_fingerprint="fp_card")
    take(FraudScreen)
    # then the first is outside the window of the edge one: it is the 5th within it
    assert screened(edge.order_id)["verdict"] == "cleared"
    # and the one after has 6 within its window
    assert screened(inside.order_id)["verdict"] == "suspected_fraud"


def test_orders_a_second_inside_the_window_count(start):
    # given the allowed orders, and one more a second short of a window after the first
    place(MAX_ORDERS, at=start, card_fingerprint="fp_card")
    [late] = place(1, at=start + WINDOW - timedelta(seconds=1), card_fingerprint="fp_card")
    take(FraudScreen)
    assert screened(late.order_id)["verdict"] == "suspected_fraud"


def declined(order, *, at, count: int = 1, reason_code: str = "card_declined") -> None:
    for n in range(count):
        logged(
            PaymentFailedFactory(order_id=order.order_id, reason_code=reason_code),
            at=at + timedelta(seconds=n),
        )


@pytest.mark.parametrize(("key", "order"), [("card", SAME_CARD), ("email", SAME_EMAIL)])
def test_the_order_after_more_declines_than_allowed_is_suspected(settings, start, key, order):
    # given one earlier order of the card or email, declined as often as allowed
    settings.FRAUD_MAX_ORDERS = 100
    [first] = place(1, at=start, **order)
    declined(first, at=start + timedelta(seconds=5), count=MAX_DECLINES)
    # when the next order comes, then it is cleared: the declines are at the limit
    [at_limit] = place(1, at=start + timedelta(minutes=1), **order)
    # and after one more decline the next order is suspected
    declined(first, at=start + timedelta(minutes=2))
    [past] = place(1, at=start + timedelta(minutes=3), **order)
    take(FraudScreen)
    assert screened(at_limit.order_id)["verdict"] == "cleared"
    words = (
        "declined payments on this card"
        if key == "card"
        else "declined payments for this email address"
    )
    verdict = screened(past.order_id)
    assert (verdict["verdict"], verdict["rule"]) == ("suspected_fraud", f"declines_per_{key}")
    assert verdict["reason"] == (
        f"Suspected fraud: {MAX_DECLINES + 1} {words} within 10 minutes "
        f"(more than {MAX_DECLINES} allowed); nothing was charged"
    )


def test_only_the_issuers_refusals_count_as_declines(settings, start):
    settings.FRAUD_MAX_ORDERS = 100
    [first] = place(1, at=start, card_fingerprint="fp_card")
    declined(first, at=start, count=MAX_DECLINES + 2, reason_code="gateway_error")
    declined(first, at=start + timedelta(seconds=10), count=1, reason_code="insufficient_funds")
    [next_order] = place(1, at=start + timedelta(minutes=1), card_fingerprint="fp_card")
    take(FraudScreen)
    assert screened(next_order.order_id)["verdict"] == "cleared"
    assert FraudObservation.objects.filter(kind="decline", key_kind="card").count() == 1


def test_a_decline_for_an_order_the_screen_never_saw_is_not_counted(start):
    declined(OrderPlacedFactory(), at=start, count=MAX_DECLINES + 1)
    take(FraudScreen)
    assert not FraudObservation.objects.exists()


def test_what_a_key_did_before_staff_cleared_it_no_longer_counts(start):
    # given a card past the limit (with several emails), whose owner staff then cleared
    place(MAX_ORDERS + 1, at=start, **SAME_CARD)
    FraudClearanceFactory(key_kind="card", key="fp_card", cleared_at=start + timedelta(minutes=1))
    # when it orders again within the window, after the clearance
    [after] = place(1, at=start + timedelta(minutes=2), **SAME_CARD)
    take(FraudScreen)
    # then only what came after the clearance counts
    assert verdicts() == ["cleared"] * MAX_ORDERS + ["suspected_fraud", "cleared"]
    assert screened(after.order_id)["verdict"] == "cleared"


def test_a_clearance_clears_its_key_only(start):
    # given one card and one email past the limit, and only the card cleared
    place(MAX_ORDERS + 1, at=start, card_fingerprint="fp_card", email="ada@example.com")
    FraudClearanceFactory(key_kind="card", key="fp_card", cleared_at=start + timedelta(minutes=1))
    [after] = place(1, at=start + timedelta(minutes=2), card_fingerprint="fp_card")
    take(FraudScreen)
    # then the email's orders still count
    assert screened(after.order_id)["rule"] == "orders_per_email"


def test_a_clearance_of_another_key_or_after_the_order_changes_nothing(start):
    FraudClearanceFactory(key_kind="card", key="fp_other", cleared_at=start + timedelta(minutes=1))
    FraudClearanceFactory(key_kind="card", key="fp_card", cleared_at=start + timedelta(hours=1))
    place(MAX_ORDERS, at=start, **SAME_CARD)
    [past] = place(1, at=start + timedelta(minutes=2), **SAME_CARD)
    take(FraudScreen)
    assert screened(past.order_id)["rule"] == "orders_per_card"


def test_each_order_is_screened_once_in_the_conversation_of_its_order(start):
    [order] = place(1, at=start)
    take(FraudScreen)
    take(FraudScreen)
    [row] = OutboxMessage.objects.filter(type="OrderScreened")
    placed = OutboxMessage.objects.get(type="OrderPlaced")
    assert row.correlation_id == str(order.order_id)
    assert row.causation_id == placed.message_id
    assert row.payload["verdict"] == "cleared" and row.payload["reason"] == ""


def test_nothing_is_published_while_replaying(start):
    # given a card past the limit
    place(MAX_ORDERS + 1, at=start, card_fingerprint="fp_card")
    before = OutboxMessage.objects.count()
    # when the screen replays the log into its shadow
    take(FraudScreen, slot=Slot.SHADOW, replaying=True)
    # then the verdicts are in the shadow, and nothing went into the outbox
    assert OutboxMessage.objects.count() == before
    shadow = ScreenedOrder.objects.filter(slot=Slot.SHADOW)
    assert list(shadow.values_list("verdict", flat=True)).count("suspected_fraud") == 1
    assert not ScreenedOrder.objects.filter(slot=Slot.LIVE).exists()

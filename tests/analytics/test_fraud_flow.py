"""The fraud screen end to end: the real stream processor, real workers, orders through the API.

``python manage.py stream_processor --only fraud`` runs in a process of its
own (tests/support/stream_processor.py), with small limits: more than 3
orders, or more than 1 declined payment, from one card or one email within
10 minutes and the order is suspected. Payments runs with FRAUD_SCREENING=1
(tests/flow/test_fraud_screening.py's worker), every other app in its own
worker. What the processor reads is only what the test does: it starts at the
log's head, and each test pays with card numbers of its own.
"""

# The flow tests' fixtures stock and screening_payments are imported, to be parameters here.
# ruff: noqa: F811

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connections
from django.test import Client
from django.urls import reverse

from analytics.models import FraudClearance, FraudFlag, ScreenedOrder
from gateway.models import Charge
from notifications.models import SentEmail
from orders.models import Order
from payments.models import Screening
from tests.flow.conftest import order_body, stock, wait_until_closed  # noqa: F401
from tests.flow.test_fraud_screening import screening_payments  # noqa: F401
from tests.support.stream_processor import StreamProcessors, stream_processors_running
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

MAX_ORDERS = 3
MAX_DECLINES = 1
FRAUD_LIMITS = {
    "FRAUD_MAX_ORDERS": str(MAX_ORDERS),
    "FRAUD_MAX_DECLINES": str(MAX_DECLINES),
    "FRAUD_WINDOW_SECONDS": "600",
}
DECLINED_CARD = "4000 0000 0000 0002"
WORKFLOWS = ["choreography", "orchestration"]


@pytest.fixture
def fraud_screen(screening_payments) -> StreamProcessors:
    """The fraud screen's stream processor, on the workers' broker and database."""
    with stream_processors_running({**screening_payments.env, **FRAUD_LIMITS}, ["fraud"]) as run:
        yield run


def fresh_card() -> str:
    """A Luhn-valid number no other test uses (any such number is charged): a card of its own."""
    payload = "4111" + "".join(random.choices("0123456789", k=11))
    total = 0
    for index, digit in enumerate(int(d) for d in reversed(payload)):
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return payload + str(-total % 10)


def fresh_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def place(client, sku: str, *, workflow: str, card: str, email: str) -> str:
    response = client.post(
        "/api/orders/",
        order_body(items=[(sku, 1)], card_number=card, email=email, workflow=workflow),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def gateway_charges(order_id: str):
    return Charge.objects.filter(idempotency_key=f"order-{order_id}")


def assert_charged_and_completed(order_id: str) -> None:
    order = wait_until_closed(order_id)
    assert (order.status, order.cancel_reason) == ("completed", "")
    assert gateway_charges(order_id).get().amount == order.total


def assert_cancelled_as_suspected_never_charged(client, order_id: str, *, rule_words: str) -> None:
    """Cancelled for suspected fraud, saying so on the API, the order page and in the email;
    the gateway never asked for the money."""
    order = wait_until_closed(order_id)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "suspected_fraud")
    assert order.cancel_reason.startswith("Payment failed: Suspected fraud: "), order.cancel_reason
    assert rule_words in order.cancel_reason
    assert not gateway_charges(order_id).exists()
    assert (order.amount_charged, order.amount_refunded) == (0, 0)

    detail = client.get(f"/api/orders/{order_id}/").json()
    assert (detail["status"], detail["cancel_reason"]) == ("cancelled", order.cancel_reason)
    assert "OrderScreened" in [entry["type"] for entry in detail["timeline"]]
    assert order.cancel_reason in client.get(f"/orders/{order_id}/").content.decode()
    email = wait_for(
        lambda: SentEmail.objects.filter(order_id=order_id, kind="cancelled").first(),
        what=f"the cancellation email of {order_id}",
    )
    assert order.cancel_reason.removeprefix("Payment failed: ") in email.body


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_a_burst_from_one_card_is_cancelled_past_the_limit_never_charged(
    client, admin_client, stock, fraud_screen, workflow
):
    sku = stock(on_hand=20, price="9.00")
    card, other_cards = fresh_card(), [fresh_card(), fresh_card()]

    # When six orders from one card (each with an email of its own, so that only the
    # card can trip a rule) and one from each of two other cards are placed in a burst
    plan = [card, card, other_cards[0], card, card, card, other_cards[1], card]
    placed = [
        (c, place(client, sku, workflow=workflow, card=c, email=fresh_email("burst"))) for c in plan
    ]
    from_card = [order_id for c, order_id in placed if c == card]
    from_others = [order_id for c, order_id in placed if c != card]

    # Then the card's first three orders are charged and complete, and so do the others'
    for order_id in [*from_card[:MAX_ORDERS], *from_others]:
        assert_charged_and_completed(order_id)

    # And its 4th, 5th and 6th are cancelled as suspected fraud, never charged
    for nth, order_id in enumerate(from_card[MAX_ORDERS:], start=MAX_ORDERS + 1):
        assert_cancelled_as_suspected_never_charged(
            client, order_id, rule_words=f"{nth} orders from this card within 10 minutes"
        )

    # And staff find each of them among the fraud flags, with the rule and its numbers
    flags = FraudFlag.objects.order_by("fired_at")
    assert [(str(f.order_id), f.rule, f.key_kind, f.count, f.limit) for f in flags] == [
        (order_id, "orders_per_card", "card", nth, MAX_ORDERS)
        for nth, order_id in enumerate(from_card[MAX_ORDERS:], start=MAX_ORDERS + 1)
    ]
    page = admin_client.get(reverse("admin:analytics_fraudflag_changelist")).content.decode()
    for flag in flags:
        assert str(flag.order_id) in page
        assert flag.reason in page
    assert page.count("orders_per_card") >= len(flags)
    assert f'<td class="field-limit">{MAX_ORDERS}</td>' in page
    for nth in range(MAX_ORDERS + 1, len(from_card) + 1):
        assert f'<td class="field-count">{nth}</td>' in page


def test_a_burst_sent_all_at_once_is_counted_whole(stock, fraud_screen):
    sku = stock(on_hand=20)
    card, burst = fresh_card(), 8
    ready = threading.Barrier(burst)

    def place_at_once(_) -> str:
        ready.wait()
        try:
            return place(
                Client(), sku, workflow="choreography", card=card, email=fresh_email("at-once")
            )
        finally:
            connections.close_all()

    # When eight orders from one card are sent at the same moment, as a script would:
    # they reach the log in the order their requests commit, not that of their clocks
    with ThreadPoolExecutor(burst) as pool:
        order_ids = list(pool.map(place_at_once, range(burst)))
    for order_id in order_ids:
        wait_until_closed(order_id)

    # Then the first three the screen read are charged, and every one after is cancelled
    read = [
        str(order_id)
        for order_id in ScreenedOrder.objects.order_by("id").values_list("order_id", flat=True)
    ]
    assert sorted(read) == sorted(order_ids)
    for order_id in read[:MAX_ORDERS]:
        assert_charged_and_completed(order_id)
    for order_id in read[MAX_ORDERS:]:
        order = Order.objects.get(pk=order_id)
        assert (order.status, order.cancel_reason_code) == ("cancelled", "suspected_fraud")
        assert not gateway_charges(order_id).exists()
    assert sorted(FraudFlag.objects.values_list("count", flat=True)) == list(
        range(MAX_ORDERS + 1, burst + 1)
    )


def test_an_email_past_its_declines_is_suspected_even_with_a_good_card(client, stock, fraud_screen):
    sku = stock(on_hand=5)
    email = fresh_email("declines")

    # Given two orders whose card is declined (the second still cleared: one decline before it)
    for _ in range(MAX_DECLINES + 1):
        declined = wait_until_closed(
            place(client, sku, workflow="choreography", card=DECLINED_CARD, email=email)
        )
        assert (declined.status, declined.cancel_reason_code) == ("cancelled", "card_declined")

    # When the same email orders with a card that would be charged
    order_id = place(client, sku, workflow="choreography", card=fresh_card(), email=email)

    # Then it is cancelled as suspected fraud, and the card never charged
    assert_cancelled_as_suspected_never_charged(
        client, order_id, rule_words="2 declined payments for this email address"
    )
    flag = FraudFlag.objects.get()
    assert (str(flag.order_id), flag.rule, flag.key, flag.count, flag.limit) == (
        order_id, "declines_per_email", email, MAX_DECLINES + 1, MAX_DECLINES,
    )  # fmt: skip


def test_a_card_staff_cleared_is_charged_again(client, stock, fraud_screen):
    sku = stock(on_hand=10)
    card = fresh_card()

    # Given a card flagged for one order too many
    order_ids = [
        place(client, sku, workflow="choreography", card=card, email=fresh_email("cleared"))
        for _ in range(MAX_ORDERS + 1)
    ]
    assert_cancelled_as_suspected_never_charged(
        client, order_ids[-1], rule_words="orders from this card"
    )
    flag = FraudFlag.objects.get()

    # When a member of staff who may clear flags clears it in the admin
    staff = User.objects.create_user("fraud-desk", password="x", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_fraudflag", "add_fraudclearance"])
    )
    client.force_login(staff)
    changelist = reverse("admin:analytics_fraudflag_changelist")
    response = client.post(changelist, {"action": "clear", "_selected_action": [flag.pk]})
    assert response.status_code == 302, response.content
    clearance = FraudClearance.objects.get()
    assert (clearance.key_kind, clearance.key, clearance.cleared_by) == (
        "card", flag.key, "fraud-desk",
    )  # fmt: skip
    assert '<td class="field-cleared"><img src="/static/admin/img/icon-yes.svg"' in (
        client.get(changelist).content.decode()
    )

    # Then the card's next order is charged and completes
    assert_charged_and_completed(
        place(client, sku, workflow="choreography", card=card, email=fresh_email("cleared"))
    )


@pytest.mark.parametrize(
    ("workflow", "halt"),
    [("choreography", "paused"), ("orchestration", "terminated"), ("choreography", "killed")],
)
def test_an_order_placed_while_the_screen_is_down_waits_uncharged_then_is_cancelled(
    client, stock, fraud_screen, workflow, halt
):
    sku = stock(on_hand=10)
    card = fresh_card()

    # Given as many orders from one card as it may place, cleared (the verdicts sent) and charged
    for _ in range(MAX_ORDERS):
        assert_charged_and_completed(
            place(client, sku, workflow=workflow, card=card, email=fresh_email("behind"))
        )

    # When the processor stops (frozen, stopped, or killed) and the card orders again
    processor = fraud_screen.current
    match halt:
        case "paused":
            processor.pause()
        case "terminated":
            assert processor.stop() == 0, processor.log()
        case "killed":
            processor.kill()
    late = place(client, sku, workflow=workflow, card=card, email=fresh_email("behind"))

    # Then its charge waits for the verdict, the gateway never asked
    wait_for(
        lambda: Screening.objects.filter(order_id=late, requested_at__isnull=False).exists(),
        what="the late order's charge to wait for its verdict",
    )
    until = time.monotonic() + 3
    while time.monotonic() < until:
        assert not gateway_charges(late).exists()
        assert Order.objects.get(pk=late).status == "placed"
        time.sleep(0.2)

    # When the processor is back (the same one thawed, or a new one from the committed offset)
    if halt == "paused":
        processor.resume()
    else:
        fraud_screen.start()

    # Then the late order is cancelled as suspected fraud, never charged, screened once
    assert_cancelled_as_suspected_never_charged(
        client, late, rule_words=f"{MAX_ORDERS + 1} orders from this card"
    )
    assert ScreenedOrder.objects.count() == MAX_ORDERS + 1

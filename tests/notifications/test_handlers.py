"""notifications.handlers, called as a delivery calls them: what each moment of an order tells
its customer, in the mail that goes out."""

import uuid
from decimal import Decimal

import pytest
from django.core import mail

from messaging.errors import RetryLater
from notifications import handlers
from notifications.models import Recipient, SentEmail
from orders.events import OrderCancelled
from payments.events import PaymentRefunded
from tests.notifications.conftest import page_link
from tests.notifications.factories import RecipientFactory
from tests.support.handling import assert_workflows_taken, handle
from tests.support.order_messages import OrderCompletedFactory, OrderPlacedFactory

pytestmark = pytest.mark.django_db

ORDER_ID = uuid.UUID("3f2a9c1e-5b7d-4e0a-9c3b-1d2e3f4a5b6c")
SHORT_ID = "3F2A9C1E"


def refunded(order_id=ORDER_ID, workflow="choreography"):
    return PaymentRefunded(
        order_id=order_id,
        payment_id=uuid.uuid4(),
        amount=Decimal("20.00"),
        currency="EUR",
        reason_code="out_of_stock",
        reason="Out of stock: MUG-1 (2 ordered, 0 available)",
        workflow=workflow,
    )


ANNOUNCEMENTS = [
    pytest.param(
        handlers.announce_completion,
        OrderCompletedFactory(order_id=ORDER_ID, tracking_number="PP000000000042"),
        "completed",
        f"Your order {SHORT_ID} is on its way",
        "Your order has shipped. Tracking number: PP000000000042\n",
        id="completed",
    ),
    pytest.param(
        handlers.announce_cancellation,
        OrderCancelled(order_id=ORDER_ID, reason_code="payment_failed", reason="Card declined"),
        "cancelled",
        f"Your order {SHORT_ID} was cancelled",
        "We are sorry: your order was cancelled.\n\nReason: Card declined\n",
        id="cancelled",
    ),
    pytest.param(
        handlers.announce_refund,
        refunded(),
        "refunded",
        f"Refund for order {SHORT_ID}",
        "We refunded 20.00 EUR to your card.\n\n"
        "Reason: Out of stock: MUG-1 (2 ordered, 0 available)\n",
        id="refunded",
    ),
]


@pytest.mark.parametrize(
    ("handler", "message_of"),
    [
        pytest.param(handlers.confirm_order, OrderPlacedFactory, id="confirm_order"),
        pytest.param(handlers.announce_refund, refunded, id="announce_refund"),
    ],
)
def test_the_customer_hears_of_an_order_whichever_workflow_runs_it(handler, message_of):
    assert_workflows_taken(handler, message_of, orchestration=True)


def test_a_placed_order_is_confirmed_to_its_customer_with_its_lines_and_total():
    # Given an order placed for two mugs
    order = OrderPlacedFactory(
        order_id=ORDER_ID,
        email="ada@example.com",
        lines__0__sku="MUG-1",
        lines__0__name="Mug",
        lines__0__quantity=2,
        lines__0__unit_price=Decimal("12.50"),
    )

    # When confirm_order takes it, twice (a redelivery)
    handle(handlers.confirm_order, order)
    handle(handlers.confirm_order, order)

    # Then whom to write to is known, and one confirmation went out listing what was ordered
    assert Recipient.objects.get(order_id=ORDER_ID).email == "ada@example.com"
    [message] = mail.outbox
    assert (message.to, message.subject) == (
        ["ada@example.com"],
        f"We received your order {SHORT_ID}",
    )
    assert message.body == (
        "Thank you for your order.\n\n  2 × Mug (MUG-1) at 12.50 EUR\n\nTotal: 25.00 EUR\n"
        + page_link(ORDER_ID)
    )
    assert SentEmail.objects.get().kind == "placed"


@pytest.mark.parametrize(("handler", "message", "kind", "subject", "body"), ANNOUNCEMENTS)
def test_each_later_moment_of_an_order_is_told_to_its_customer(
    handler, message, kind, subject, body
):
    # Given whom to write to about the order
    RecipientFactory(order_id=ORDER_ID, email="ada@example.com")

    # When the moment's message arrives
    handle(handler, message)

    # Then the customer gets the mail that says so, with the link back to the order
    [email] = mail.outbox
    assert (email.to, email.subject, email.body) == (
        ["ada@example.com"],
        subject,
        body + page_link(ORDER_ID),
    )
    assert SentEmail.objects.get(order_id=ORDER_ID).kind == kind


@pytest.mark.parametrize(
    ("handler", "message"), [pytest.param(*case.values[:2], id=case.id) for case in ANNOUNCEMENTS]
)
def test_a_moment_that_overtakes_the_order_waits_for_its_recipient(handler, message):
    # Given the order's OrderPlaced has not reached notifications yet
    # When the moment's message arrives
    with pytest.raises(RetryLater):
        handle(handler, message)

    # Then nothing goes out yet: the delivery comes again
    assert mail.outbox == []
    assert not SentEmail.objects.exists()

"""payments.handlers, called as a delivery calls them: with the message, its envelope, in a
transaction, what they publish following from the message handled."""

import uuid
from decimal import Decimal

import pytest
from django.db import transaction

from gateway import client as gateway
from inventory.events import InventoryReservationFailed
from messaging.context import handling
from orders.events import Workflow
from payments import handlers
from payments.commands import ChargePayment, RefundPayment
from payments.models import Payment
from shipping.events import ShipmentFailed
from tests.gateway.factories import CardTokenFactory
from tests.payments.factories import PaymentFactory
from tests.support.envelopes import envelope_of, published, published_types
from tests.support.handling import assert_workflows_taken, handle
from tests.support.order_messages import OrderCancelledFactory, OrderPlacedFactory
from tests.support.screening_messages import SUSPICION, OrderScreenedFactory

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def out_of_stock(order_id, workflow=Workflow.CHOREOGRAPHY):
    reason = "Out of stock: MUG-1 (1 ordered, 0 available)"
    return InventoryReservationFailed(order_id=order_id, reason=reason, workflow=workflow)


def unshippable(order_id, workflow=Workflow.CHOREOGRAPHY):
    reason = "ParcelPost does not deliver to AQ"
    return ShipmentFailed(order_id=order_id, reason=reason, workflow=workflow)


@pytest.mark.parametrize(
    ("handler", "message_of"),
    [
        pytest.param(handlers.charge_for_order, OrderPlacedFactory, id="charge_for_order"),
        pytest.param(
            handlers.refund_when_out_of_stock, out_of_stock, id="refund_when_out_of_stock"
        ),
        pytest.param(handlers.refund_when_unshippable, unshippable, id="refund_when_unshippable"),
    ],
)
def test_a_choreography_handler_takes_no_orchestration_message(handler, message_of):
    assert_workflows_taken(handler, message_of, orchestration=False)


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        pytest.param(handlers.refund_when_cancelled, OrderCancelledFactory(), id="cancelled"),
        pytest.param(
            handlers.charge_payment,
            ChargePayment(
                order_id=uuid.uuid4(),
                amount=Decimal("1"),
                currency="EUR",
                card_token="tok",
                card_last4="4242",
            ),
            id="charge_payment",
        ),
        pytest.param(
            handlers.refund_payment,
            RefundPayment(order_id=uuid.uuid4(), reason_code="timeout", reason="Late"),
            id="refund_payment",
        ),
    ],
)
def test_a_cancellation_and_the_sagas_commands_are_taken_whatever_the_workflow(handler, message):
    assert handler.wants(message)


def test_the_fraud_screens_verdict_is_taken_whatever_the_workflow():
    assert_workflows_taken(
        handlers.settle_screened_charge, OrderScreenedFactory, orchestration=True
    )


def test_a_placed_order_is_charged_and_the_reply_follows_from_it():
    # Given a choreographed order placed with a good card, for two lines
    order = OrderPlacedFactory(card="4242424242424242", lines__0__quantity=2)

    # When charge_for_order takes it
    envelope = handle(handlers.charge_for_order, order)

    # Then the order's total is captured, and the order's conversation hears so
    payment = Payment.objects.get(order_id=order.order_id)
    assert (payment.status, payment.amount, payment.card_last4) == (
        Payment.Status.CAPTURED,
        Decimal("20.00"),
        "4242",
    )
    [processed] = published()
    assert processed.type == "PaymentProcessed"
    assert processed.payload["workflow"] == "choreography"
    assert (processed.correlation_id, processed.causation_id) == (
        str(order.order_id),
        envelope.message_id,
    )


@pytest.mark.parametrize(
    ("handler", "message_of", "reason_code"),
    [
        pytest.param(handlers.refund_when_out_of_stock, out_of_stock, "out_of_stock", id="stock"),
        pytest.param(
            handlers.refund_when_unshippable, unshippable, "shipping_failed", id="unshippable"
        ),
        pytest.param(
            handlers.refund_when_cancelled,
            lambda order_id: OrderCancelledFactory(order_id=order_id),
            "order_cancelled",
            id="cancelled",
        ),
    ],
)
def test_a_paid_order_that_cannot_go_on_is_refunded_saying_why(handler, message_of, reason_code):
    # Given a captured payment
    payment = PaymentFactory()
    message = message_of(payment.order_id)

    # When the news that its order cannot go on arrives
    handle(handler, message)

    # Then all the money goes back, for the reason the message gives
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (Payment.Status.REFUNDED, payment.amount)
    [refunded] = published("PaymentRefunded")
    assert (refunded.payload["reason_code"], refunded.payload["reason"]) == (
        reason_code,
        message.reason,
    )
    assert refunded.payload["workflow"] == "choreography"


def test_an_order_cancelled_before_its_charge_is_voided():
    # Given an order cancelled before it was charged
    cancelled = OrderCancelledFactory(reason_code="order_cancelled")

    # When refund_when_cancelled takes it
    handle(handlers.refund_when_cancelled, cancelled)

    # Then its payment is voided, so a late charge is refused
    assert Payment.objects.get(order_id=cancelled.order_id).status == Payment.Status.VOIDED
    assert published_types() == ["PaymentVoided"]


def test_the_sagas_charge_is_made_and_answered_for_the_saga():
    # Given the saga's command to charge an order
    token = CardTokenFactory()
    command = ChargePayment(
        order_id=uuid.uuid4(),
        amount=Decimal("12.50"),
        currency="EUR",
        card_token=token.token,
        card_last4=token.last4,
    )

    # When charge_payment takes it
    handle(handlers.charge_payment, command)

    # Then the amount asked for is captured, and the saga gets its reply
    payment = Payment.objects.get(order_id=command.order_id)
    assert (payment.status, payment.amount) == (Payment.Status.CAPTURED, Decimal("12.50"))
    [processed] = published("PaymentProcessed")
    assert (processed.payload["amount"], processed.payload["workflow"]) == (
        "12.50",
        "orchestration",
    )


@pytest.mark.parametrize(
    ("make_order_id", "reply", "status"),
    [
        pytest.param(lambda: PaymentFactory().order_id, "PaymentRefunded", "refunded", id="paid"),
        pytest.param(uuid.uuid4, "PaymentVoided", "voided", id="never-charged"),
    ],
)
def test_the_sagas_refund_gives_the_money_back_or_voids_and_answers(make_order_id, reply, status):
    # Given the saga's compensation for an order
    command = RefundPayment(order_id=make_order_id(), reason_code="timeout", reason="Too slow")

    # When refund_payment takes it
    handle(handlers.refund_payment, command)

    # Then the money is given back (or none can be taken any more), and the saga hears which
    assert Payment.objects.get(order_id=command.order_id).status == status
    [answer] = published()
    assert (answer.type, answer.payload["workflow"]) == (reply, "orchestration")


# --- fraud screening ---


def charge_command(order_id=None) -> ChargePayment:
    token = CardTokenFactory()
    return ChargePayment(
        order_id=order_id or uuid.uuid4(),
        amount=Decimal("12.50"),
        currency="EUR",
        card_token=token.token,
        card_last4=token.last4,
    )


def test_with_screening_a_placed_order_is_charged_when_its_verdict_clears_it(settings):
    # Given fraud screening, and a choreographed order whose charge came before its verdict
    settings.FRAUD_SCREENING = True
    order = OrderPlacedFactory(card="4242424242424242")
    handle(handlers.charge_for_order, order)
    assert not Payment.objects.exists()
    assert published() == []

    # When settle_screened_charge takes the verdict that clears it, which the stream processor
    # correlated in a conversation of its own
    verdict = OrderScreenedFactory(order_id=order.order_id)
    envelope = envelope_of(verdict, correlation_id="fraud-screen-run-7")
    with transaction.atomic(), handling(envelope):
        handlers.settle_screened_charge(verdict, envelope)

    # Then the card is charged, and the reply, caused by the verdict, is in the order's
    # conversation
    assert Payment.objects.get(order_id=order.order_id).status == Payment.Status.CAPTURED
    [processed] = published()
    assert (processed.type, processed.payload["workflow"]) == ("PaymentProcessed", "choreography")
    assert (processed.correlation_id, processed.causation_id) == (
        str(order.order_id),
        envelope.message_id,
    )


def test_with_screening_the_sagas_charge_of_a_suspected_order_is_refused_for_the_saga(
    settings, monkeypatch
):
    # Given fraud screening, and the saga's charge of an order the fraud screen suspects
    settings.FRAUD_SCREENING = True
    monkeypatch.setattr(gateway, "charge", lambda **kw: pytest.fail(f"gateway asked: {kw}"))
    command = charge_command()
    handle(handlers.charge_payment, command)

    # When settle_screened_charge takes the verdict (which says the workflow it came under)
    verdict = OrderScreenedFactory(
        order_id=command.order_id, suspected=True, workflow=Workflow.ORCHESTRATION
    )
    handle(handlers.settle_screened_charge, verdict)

    # Then nothing is charged, and the saga hears the refusal and why
    assert Payment.objects.get(order_id=command.order_id).failure_code == "suspected_fraud"
    [failed] = published()
    assert failed.type == "PaymentFailed"
    assert (failed.payload["reason"], failed.payload["workflow"]) == (SUSPICION, "orchestration")


def test_a_verdict_delivered_again_changes_nothing(settings):
    # Given fraud screening, and an order charged when its verdict came
    settings.FRAUD_SCREENING = True
    order = OrderPlacedFactory(card="4242424242424242")
    handle(handlers.charge_for_order, order)
    verdict = OrderScreenedFactory(order_id=order.order_id)
    handle(handlers.settle_screened_charge, verdict)

    # When the same verdict is handled again (another copy: the inbox would skip a redelivery)
    handle(handlers.settle_screened_charge, verdict)

    # Then there is one charge, and one reply
    assert Payment.objects.filter(order_id=order.order_id).count() == 1
    assert published_types() == ["PaymentProcessed"]

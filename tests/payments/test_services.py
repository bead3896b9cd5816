"""payments.services: charging a card once (once the fraud screen lets us), refunding at most
once, voiding what was never charged.

The simulated gateway answers by test card (README, "Test cards"); what the
services publish is read from the outbox, since nothing is dispatched inside
a test's transaction.
"""

import threading
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connections, transaction

from analytics.events import Verdict
from gateway import client as gateway
from gateway.models import Charge, Outage
from messaging import publishing
from messaging.errors import DependencyUnavailable
from payments import services
from payments.models import Payment, Refund, Screening
from payments.services import (
    payment_charge,
    payment_charge_on_request,
    payment_refund,
    payment_refund_on_request,
    payment_refund_or_void,
    payment_screening_record,
)
from tests.gateway.factories import (
    DECLINED_CARD,
    INSUFFICIENT_FUNDS_CARD,
    TIMEOUT_CARD,
    VALID_CARD,
    CardTokenFactory,
    GatewayChargeFactory,
    OutageFactory,
)
from tests.payments.factories import PaymentFactory
from tests.support.envelopes import published, published_types
from tests.support.screening_messages import SUSPICION, OrderScreenedFactory

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

AMOUNT = Decimal("20.00")
DECLINES = [
    pytest.param(DECLINED_CARD, "card_declined", "Your card was declined.", id="declined"),
    pytest.param(
        INSUFFICIENT_FUNDS_CARD,
        "insufficient_funds",
        "Your card has insufficient funds.",
        id="insufficient-funds",
    ),
]


def charge(service=payment_charge, *, order_id=None, card=VALID_CARD, card_token=None) -> Payment:
    """Charge AMOUNT EUR to a tokenized test card (or to the token given)."""
    token = card_token or CardTokenFactory(card_number=card).token
    return service(
        charge=services.Charge(
            order_id=order_id or uuid.uuid4(),
            amount=AMOUNT,
            currency="EUR",
            card_token=token,
            card_last4=card[-4:],
        )
    )


def in_delivery(call, *args, **kwargs):
    """Run a service as a delivery does, in a transaction of its own that a failure rolls back."""
    with transaction.atomic():
        return call(*args, **kwargs)


def gateway_charge_of(payment: Payment) -> Charge:
    return Charge.objects.get(charge_id=payment.gateway_charge_id)


# --- payment_charge ---


def test_a_good_card_is_charged_and_the_payment_processed():
    # Given an order's card that the gateway accepts
    order_id = uuid.uuid4()

    # When the order is charged
    payment = charge(order_id=order_id)

    # Then the money is captured at the gateway and the order hears so
    payment.refresh_from_db()
    assert (payment.status, payment.amount, payment.currency, payment.card_last4) == (
        Payment.Status.CAPTURED,
        AMOUNT,
        "EUR",
        "4242",
    )
    assert gateway_charge_of(payment).amount == AMOUNT
    [processed] = published("PaymentProcessed")
    assert processed.payload == {
        "order_id": str(order_id),
        "payment_id": str(payment.id),
        "amount": "20.00",
        "currency": "EUR",
        "workflow": "choreography",
    }
    assert published_types() == ["PaymentProcessed"]


@pytest.mark.parametrize(("card", "code", "reason"), DECLINES)
def test_a_declined_card_fails_the_payment_with_the_gateways_reason(card, code, reason):
    # When an order is charged to a card the bank refuses
    payment = charge(card=card)

    # Then nothing is captured and the order learns why, in words a customer reads
    assert (payment.status, payment.failure_code, payment.failure_reason) == (
        Payment.Status.FAILED,
        code,
        reason,
    )
    assert payment.gateway_charge_id == ""
    [failed] = published("PaymentFailed")
    assert failed.payload == {
        "order_id": str(payment.order_id),
        "reason_code": code,
        "reason": reason,
        "workflow": "choreography",
    }
    assert published_types() == ["PaymentFailed"]


def test_a_request_the_gateway_refuses_fails_the_payment_as_a_gateway_error():
    # Given a card token the gateway never issued
    # When the order is charged with it
    payment = charge(card_token="tok_forged")

    # Then the payment fails, saying the gateway could not process it
    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, "gateway_error")
    assert payment.failure_reason == (
        "The payment could not be processed: unknown card token tok_forged"
    )
    [failed] = published("PaymentFailed")
    assert failed.payload["reason_code"] == "gateway_error"


def test_during_an_outage_the_charge_fails_for_a_retry_and_leaves_nothing_behind():
    # Given the gateway refuses every connection
    outage = OutageFactory()
    order_id = uuid.uuid4()

    # When the order is charged
    with pytest.raises(gateway.GatewayUnavailable):
        in_delivery(charge, order_id=order_id)

    # Then no payment is recorded and nothing is published: the delivery is retried
    assert not Payment.objects.filter(order_id=order_id).exists()
    assert published_types() == []
    outage.refresh_from_db()
    assert outage.refused_calls == 1


def test_after_repeated_outage_failures_the_breaker_puts_charges_off_without_calling():
    # Given an outage that has failed every charge, up to the breaker's limit
    OutageFactory()
    failures = settings.PAYMENT_GATEWAY_BREAKER_FAILURES
    for _ in range(failures - 1):
        with pytest.raises(gateway.GatewayUnavailable):
            in_delivery(charge)
    with pytest.raises(DependencyUnavailable):
        in_delivery(charge)

    # When another order is charged
    with pytest.raises(DependencyUnavailable) as put_off:
        in_delivery(charge)

    # Then it is put off until the breaker's trial, and the gateway was not even called
    assert 0 < put_off.value.retry_in <= settings.PAYMENT_GATEWAY_BREAKER_RESET
    assert Outage.objects.get().refused_calls == failures
    assert not Payment.objects.exists()


def test_a_charge_that_timed_out_is_retried_under_its_key_and_takes_the_money_once():
    # Given a card whose charge times out PAYMENT_GATEWAY_TIMEOUTS times
    order_id = uuid.uuid4()
    token = CardTokenFactory(card_number=TIMEOUT_CARD).token
    for _ in range(settings.PAYMENT_GATEWAY_TIMEOUTS):
        with pytest.raises(gateway.GatewayTimeout):
            in_delivery(charge, order_id=order_id, card=TIMEOUT_CARD, card_token=token)
    assert not Payment.objects.exists()

    # When the delivery is retried once more
    payment = in_delivery(charge, order_id=order_id, card=TIMEOUT_CARD, card_token=token)

    # Then the payment is captured by one charge at the gateway
    assert payment.status == Payment.Status.CAPTURED
    assert list(Charge.objects.values_list("charge_id", "amount")) == [
        (payment.gateway_charge_id, AMOUNT)
    ]
    assert published_types() == ["PaymentProcessed"]


@pytest.mark.parametrize("card", [VALID_CARD, DECLINED_CARD], ids=["captured", "declined"])
def test_charging_an_order_again_returns_its_payment_and_publishes_nothing_new(card):
    # Given an order charged once
    order_id = uuid.uuid4()
    token = CardTokenFactory(card_number=card).token
    first = charge(order_id=order_id, card=card, card_token=token)
    said = published_types()

    # When it is charged again (a redelivery)
    again = charge(order_id=order_id, card=card, card_token=token)

    # Then it is the same payment, the gateway charged at most once, and nothing more is said
    assert again == first
    assert Payment.objects.count() == 1
    assert Charge.objects.filter(status=Charge.Status.SUCCEEDED).count() <= 1
    assert published_types() == said


def test_a_voided_order_is_never_charged():
    # Given an order voided before its charge came
    voided = PaymentFactory(voided=True)

    # When the charge comes
    payment = charge(order_id=voided.order_id)

    # Then no money is taken and nothing is published
    assert payment.status == Payment.Status.VOIDED
    assert not Charge.objects.exists()
    assert published_types() == []


# --- payment_charge_on_request ---


@pytest.mark.parametrize(
    ("card", "reply"),
    [(VALID_CARD, "PaymentProcessed"), (DECLINED_CARD, "PaymentFailed")],
    ids=["captured", "declined"],
)
def test_on_request_the_charge_is_made_once_and_answered_every_time(card, reply):
    # Given the saga asked for an order's charge
    order_id = uuid.uuid4()
    token = CardTokenFactory(card_number=card).token
    first = charge(payment_charge_on_request, order_id=order_id, card=card, card_token=token)

    # When it asks again (its reply was late)
    again = charge(payment_charge_on_request, order_id=order_id, card=card, card_token=token)

    # Then one payment, and the same answer twice, for the saga
    assert again == first
    assert Payment.objects.count() == 1
    assert published_types() == [reply, reply]
    assert {row.payload["workflow"] for row in published()} == {"orchestration"}


def test_on_request_a_voided_order_is_answered_with_a_failure():
    # Given an order the saga voided before its charge came
    voided = PaymentFactory(voided=True)

    # When the charge is asked for
    charge(payment_charge_on_request, order_id=voided.order_id)

    # Then the saga hears that it failed, and why
    reason = "Voided before any charge"
    [failed] = published("PaymentFailed")
    assert (failed.payload["order_id"], failed.payload["workflow"]) == (
        str(voided.order_id),
        "orchestration",
    )
    assert (failed.payload["reason_code"], failed.payload["reason"]) == ("voided", reason)
    assert not Charge.objects.exists()


# --- payment_refund ---


def test_a_captured_payment_is_refunded_in_full_once():
    # Given a captured payment
    payment = PaymentFactory()

    # When it is refunded, twice (a redelivery)
    refund = payment_refund(
        order_id=payment.order_id, reason_code="out_of_stock", reason="Out of stock: MUG-1"
    )
    again = payment_refund(
        order_id=payment.order_id, reason_code="out_of_stock", reason="Out of stock: MUG-1"
    )

    # Then all the money goes back once, and the customer is told once
    assert again is None
    assert (refund.amount, refund.reason) == (AMOUNT, "Out of stock: MUG-1")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (Payment.Status.REFUNDED, AMOUNT)
    assert gateway_charge_of(payment).refunded == AMOUNT
    [refunded] = published("PaymentRefunded")
    assert refunded.payload == {
        "order_id": str(payment.order_id),
        "payment_id": str(payment.id),
        "amount": "20.00",
        "currency": "EUR",
        "reason_code": "out_of_stock",
        "reason": "Out of stock: MUG-1",
        "workflow": "choreography",
    }
    assert published_types() == ["PaymentRefunded"]


@pytest.mark.parametrize(
    "make_payment",
    [
        pytest.param(lambda: None, id="no-payment"),
        pytest.param(lambda: PaymentFactory(declined=True), id="declined"),
        pytest.param(lambda: PaymentFactory(voided=True), id="voided"),
        pytest.param(lambda: PaymentFactory(refunded=True), id="already-refunded"),
    ],
)
def test_with_nothing_captured_a_refund_does_nothing(make_payment):
    # Given an order whose money is not (or no longer) held
    payment = make_payment()
    order_id = payment.order_id if payment else uuid.uuid4()
    before = list(Payment.objects.values_list("status", "amount_refunded"))
    refunds_before = list(Refund.objects.all())

    # When it is refunded
    refund = payment_refund(order_id=order_id, reason_code="shipping_failed", reason="No carrier")

    # Then nothing changes, no new refund is made and nothing is published
    assert refund is None
    assert list(Payment.objects.values_list("status", "amount_refunded")) == before
    assert list(Refund.objects.all()) == refunds_before
    assert published_types() == []


def test_during_an_outage_a_refund_fails_for_a_retry_and_the_payment_stays_captured():
    # Given a captured payment, and the gateway down
    payment = PaymentFactory()
    OutageFactory()

    # When it is refunded
    with pytest.raises(gateway.GatewayUnavailable):
        in_delivery(payment_refund, order_id=payment.order_id, reason_code="staff", reason="Oops")

    # Then the money is still held, to be refunded when the delivery is retried
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (Payment.Status.CAPTURED, 0)
    assert not Refund.objects.exists()
    assert published_types() == []


# --- payment_refund_or_void ---


def test_cancelling_an_order_with_no_payment_voids_it_and_a_later_charge_is_refused():
    # Given an order that was never charged
    order_id = uuid.uuid4()

    # When it is cancelled
    refund = payment_refund_or_void(
        order_id=order_id, reason_code="order_cancelled", reason="Cancelled by the customer"
    )

    # Then its payment is voided, and the order hears so
    assert refund is None
    voided = Payment.objects.get(order_id=order_id)
    assert (voided.status, voided.amount, voided.currency) == (
        Payment.Status.VOIDED,
        0,
        settings.SHOP_CURRENCY,
    )
    [said] = published("PaymentVoided")
    assert said.payload == {
        "order_id": str(order_id),
        "reason": "Cancelled by the customer",
        "reason_code": "order_cancelled",
        "workflow": "choreography",
    }

    # When its charge comes late, it is refused: no money is taken, nothing more is said
    assert charge(order_id=order_id).status == Payment.Status.VOIDED
    assert not Charge.objects.exists()
    assert published_types() == ["PaymentVoided"]


def test_cancelling_a_paid_order_refunds_it():
    # Given a captured payment
    payment = PaymentFactory()

    # When its order is cancelled
    refund = payment_refund_or_void(
        order_id=payment.order_id, reason_code="order_cancelled", reason="Cancelled by staff"
    )

    # Then the money goes back
    assert refund.amount == AMOUNT
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    [refunded] = published("PaymentRefunded")
    assert (refunded.payload["reason_code"], refunded.payload["workflow"]) == (
        "order_cancelled",
        "choreography",
    )


def test_a_charge_whose_record_was_lost_is_found_at_the_gateway_and_refunded():
    # Given the gateway captured an order's money but our record of it was lost
    order_id = uuid.uuid4()
    lost = GatewayChargeFactory(idempotency_key=f"order-{order_id}", amount=Decimal("35.50"))

    # When the order is cancelled
    refund = payment_refund_or_void(
        order_id=order_id, reason_code="order_cancelled", reason="Cancelled by the customer"
    )

    # Then the charge found at the gateway is refunded, in full, and recorded
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.gateway_charge_id, payment.amount) == (
        Payment.Status.REFUNDED,
        lost.charge_id,
        Decimal("35.50"),
    )
    assert refund.amount == Decimal("35.50")
    lost.refresh_from_db()
    assert lost.refunded == Decimal("35.50")
    [refunded] = published("PaymentRefunded")
    assert refunded.payload["amount"] == "35.50"
    assert published_types() == ["PaymentRefunded"]


@pytest.mark.parametrize("trait", ["declined", "voided", "refunded"])
def test_cancelling_an_order_with_nothing_captured_any_more_does_nothing(trait):
    # Given an order whose payment failed, was voided, or was refunded already
    payment = PaymentFactory(**{trait: True})

    # When it is cancelled
    refund = payment_refund_or_void(
        order_id=payment.order_id, reason_code="order_cancelled", reason="Cancelled"
    )

    # Then nothing changes and nothing is published
    assert refund is None
    assert Payment.objects.get().status == payment.status
    assert published_types() == []


# --- payment_refund_on_request ---


def test_on_request_a_captured_payment_is_refunded_once_and_answered_again_alike():
    # Given a captured payment the saga asked to refund
    payment = PaymentFactory()
    payment_refund_on_request(order_id=payment.order_id, reason_code="timeout", reason="Too slow")

    # When the saga asks again (its reply was late)
    again = payment_refund_on_request(
        order_id=payment.order_id, reason_code="timeout", reason="Too slow"
    )

    # Then the money went back once, and the second answer is the first one again
    assert again == Refund.objects.get()
    assert gateway_charge_of(payment).refunded == AMOUNT
    first, second = published("PaymentRefunded")
    assert first.payload["workflow"] == "orchestration"
    assert second.payload == first.payload


def test_on_request_a_refund_asked_again_for_another_reason_repeats_why_the_money_went_back():
    # Given a payment the saga had refunded because the order timed out
    payment = PaymentFactory()
    payment_refund_on_request(order_id=payment.order_id, reason_code="timeout", reason="Too slow")

    # When it asks again, giving another reason
    payment_refund_on_request(
        order_id=payment.order_id, reason_code="out_of_stock", reason="Out of stock"
    )

    # Then the answer tells why the money really went back: its code and words agree
    _, second = published("PaymentRefunded")
    assert (second.payload["reason_code"], second.payload["reason"]) == ("timeout", "Too slow")


def test_on_request_an_order_with_no_payment_is_voided_and_answered_again_alike():
    # Given an order the saga gave up on before any charge
    order_id = uuid.uuid4()

    # When it asks for the refund, twice
    for _ in range(2):
        payment_refund_on_request(order_id=order_id, reason_code="timeout", reason="Late")

    # Then the payment is voided once, and both answers say so
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.VOIDED
    assert published_types() == ["PaymentVoided", "PaymentVoided"]
    assert {row.payload["workflow"] for row in published()} == {"orchestration"}


@pytest.mark.parametrize("trait", ["declined", "voided"])
def test_on_request_a_payment_with_nothing_captured_is_answered_voided(trait):
    # Given an order whose charge was declined, or that was voided
    payment = PaymentFactory(**{trait: True})

    # When the saga asks for its refund
    refund = payment_refund_on_request(
        order_id=payment.order_id, reason_code="order_cancelled", reason="Cancelled"
    )

    # Then nothing is refunded, and the saga hears there was nothing to give back
    assert refund is None
    assert not Refund.objects.exists()
    [voided] = published("PaymentVoided")
    assert voided.payload == {
        "order_id": str(payment.order_id),
        "reason": "Cancelled",
        "reason_code": "order_cancelled",
        "workflow": "orchestration",
    }


# --- fraud screening: charged only once the verdict clears the order ---

CHARGE_SERVICES = [
    pytest.param(payment_charge, "choreography", id="choreography"),
    pytest.param(payment_charge_on_request, "orchestration", id="orchestration"),
]


@pytest.fixture
def screening(settings):
    settings.FRAUD_SCREENING = True


@pytest.fixture
def gateway_never_called(monkeypatch):
    """A gateway whose charge must not be asked for: the test fails if it is."""

    def refuse(**kwargs):
        raise AssertionError(f"the gateway was asked to charge {kwargs}")

    monkeypatch.setattr(gateway, "charge", refuse)


def screen(order_id, *, suspected: bool = False) -> Payment | None:
    verdict = OrderScreenedFactory.build(order_id=order_id, suspected=suspected)
    return payment_screening_record(
        order_id=order_id, verdict=verdict.verdict, rule=verdict.rule, reason=verdict.reason
    )


@pytest.mark.usefixtures("screening")
@pytest.mark.parametrize(("service", "workflow"), CHARGE_SERVICES)
def test_a_charge_asked_for_before_the_verdict_waits_and_the_cleared_verdict_makes_it(
    service, workflow
):
    # Given an order's charge is asked for before the fraud screen's verdict
    order_id = uuid.uuid4()
    waiting = charge(service, order_id=order_id)

    # Then the gateway is not asked, nothing is said, and the request is kept
    assert waiting is None
    assert not Payment.objects.exists()
    assert not Charge.objects.exists()
    assert published_types() == []
    assert Screening.objects.get(order_id=order_id).is_charge_waiting

    # When the verdict clears it
    payment = screen(order_id)

    # Then the card is charged, and the answer goes to the workflow that asked
    assert (payment.status, payment.amount) == (Payment.Status.CAPTURED, AMOUNT)
    assert gateway_charge_of(payment).amount == AMOUNT
    [processed] = published()
    assert (processed.type, processed.payload["workflow"]) == ("PaymentProcessed", workflow)


@pytest.mark.usefixtures("screening")
@pytest.mark.parametrize(("service", "workflow"), CHARGE_SERVICES)
def test_a_cleared_verdict_that_came_first_lets_the_charge_go_at_once(service, workflow):
    # Given the fraud screen cleared an order before its charge was asked for
    order_id = uuid.uuid4()
    assert screen(order_id) is None
    assert published_types() == []

    # When the charge is asked for
    payment = charge(service, order_id=order_id)

    # Then it is made at once
    assert payment.status == Payment.Status.CAPTURED
    [processed] = published()
    assert (processed.type, processed.payload["workflow"]) == ("PaymentProcessed", workflow)


@pytest.mark.usefixtures("screening", "gateway_never_called")
@pytest.mark.parametrize("verdict_first", [True, False], ids=["verdict-first", "charge-first"])
@pytest.mark.parametrize(("service", "workflow"), CHARGE_SERVICES)
def test_a_suspected_order_is_refused_without_asking_the_gateway(service, workflow, verdict_first):
    # Given an order the fraud screen suspects, its verdict and its charge request in either order
    order_id = uuid.uuid4()
    if verdict_first:
        screen(order_id, suspected=True)
        charge(service, order_id=order_id)
    else:
        charge(service, order_id=order_id)
        screen(order_id, suspected=True)

    # Then the payment is refused as suspected fraud, the gateway never asked (nothing to refund)
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.failure_code, payment.failure_reason) == (
        Payment.Status.FAILED,
        "suspected_fraud",
        SUSPICION,
    )
    assert (payment.gateway_charge_id, payment.was_captured) == ("", False)
    assert not Charge.objects.exists()
    # And the order hears why, in its workflow, so that it is cancelled
    [failed] = published()
    assert failed.type == "PaymentFailed"
    assert failed.payload == {
        "order_id": str(order_id),
        "reason_code": "suspected_fraud",
        "reason": SUSPICION,
        "workflow": workflow,
    }


@pytest.mark.usefixtures("screening")
@pytest.mark.parametrize("suspected_again", [False, True], ids=["same", "other-verdict"])
def test_a_verdict_that_comes_again_changes_nothing(suspected_again):
    # Given an order charged once the fraud screen cleared it
    order_id = uuid.uuid4()
    charge(order_id=order_id)
    screen(order_id)
    said = published_types()

    # When a verdict on it comes again (a replay of the processor), the same or another
    again = screen(order_id, suspected=suspected_again)

    # Then the first verdict stands: one charge, nothing more said
    assert again is None
    assert Screening.objects.get(order_id=order_id).verdict == Verdict.CLEARED
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.CAPTURED
    assert Charge.objects.count() == 1
    assert said == published_types() == ["PaymentProcessed"]


@pytest.mark.usefixtures("screening")
def test_a_charge_asked_for_again_while_it_waits_is_kept_once_and_answered_once_settled():
    # Given the saga asked twice for a charge that waits for its verdict
    order_id = uuid.uuid4()
    token = CardTokenFactory().token
    for _ in range(2):
        assert charge(payment_charge_on_request, order_id=order_id, card_token=token) is None
    assert published_types() == []

    # When the verdict clears it, and then the saga asks again
    screen(order_id)
    charge(payment_charge_on_request, order_id=order_id, card_token=token)

    # Then it is charged once, and answered once settled and every time asked after
    assert Charge.objects.count() == 1
    assert published_types() == ["PaymentProcessed", "PaymentProcessed"]


@pytest.mark.usefixtures("screening", "gateway_never_called")
def test_a_charge_voided_while_it_waits_for_its_verdict_is_never_made():
    # Given the saga gave up on a charge that waited for its verdict (its step timed out)
    order_id = uuid.uuid4()
    charge(payment_charge_on_request, order_id=order_id)
    payment_refund_on_request(order_id=order_id, reason_code="timeout", reason="No reply in time")
    assert published_types() == ["PaymentVoided"]

    # When the verdict clears it after all
    settled = screen(order_id)

    # Then the card is not charged, and nothing more is said
    assert settled is None
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.VOIDED
    assert published_types() == ["PaymentVoided"]


@pytest.mark.parametrize("verdict_first", [True, False], ids=["verdict-first", "charge-first"])
def test_with_screening_off_the_charge_goes_at_once_whatever_the_verdict(settings, verdict_first):
    # Given fraud screening is off
    settings.FRAUD_SCREENING = False
    order_id = uuid.uuid4()

    # When an order is charged, and the fraud screen suspects it before or after
    if verdict_first:
        screen(order_id, suspected=True)
    payment = charge(order_id=order_id)
    if not verdict_first:
        screen(order_id, suspected=True)

    # Then it was charged at once, as without a fraud screen, and the verdict changed nothing
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert Charge.objects.count() == 1
    assert published_types() == ["PaymentProcessed"]


@pytest.mark.django_db(transaction=True, databases=["default", "gateway"])
@pytest.mark.parametrize("suspected", [False, True], ids=["cleared", "suspected"])
@pytest.mark.parametrize(
    ("service", "asked_before"),
    [
        pytest.param(payment_charge, False, id="first-request"),
        pytest.param(payment_charge_on_request, True, id="request-asked-again"),
    ],
)
def test_a_charge_request_and_its_verdict_at_once_settle_it_exactly_once(
    settings, monkeypatch, service, asked_before, suspected
):
    # Given fraud screening, a gateway that takes a moment, and what is published left in the
    # outbox (the dispatch paused)
    settings.FRAUD_SCREENING = True
    settings.PAYMENT_GATEWAY_LATENCY = 0.05
    monkeypatch.setattr(publishing, "_dispatch_paused_until", float("inf"))
    order_ids = [uuid.uuid4() for _ in range(10)]
    token = CardTokenFactory().token
    if asked_before:
        # (the saga asked once already: its request waits on the order's screening row)
        for order_id in order_ids:
            in_delivery(charge, service, order_id=order_id, card_token=token)
    errors = []

    def at_once(call, barrier) -> None:
        try:
            barrier.wait()
            in_delivery(call)
        except Exception as exc:  # reported below, never hidden
            errors.append(exc)
        finally:
            connections.close_all()

    # When each order's charge request and its verdict are handled at the same moment
    for order_id in order_ids:
        barrier = threading.Barrier(2)
        calls = [
            lambda order_id=order_id: charge(service, order_id=order_id, card_token=token),
            lambda order_id=order_id: screen(order_id, suspected=suspected),
        ]
        threads = [threading.Thread(target=at_once, args=(call, barrier)) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # Then each order was settled once, by whichever came second: never both, never neither,
    # and its verdict is kept
    assert errors == []
    verdict = Verdict.SUSPECTED_FRAUD if suspected else Verdict.CLEARED
    screenings = Screening.objects.filter(order_id__in=order_ids)
    assert set(screenings.values_list("verdict", flat=True)) == {verdict}
    payments = Payment.objects.filter(order_id__in=order_ids)
    status = Payment.Status.FAILED if suspected else Payment.Status.CAPTURED
    assert list(payments.values_list("status", flat=True)) == [status] * len(order_ids)
    assert Charge.objects.count() == (0 if suspected else len(order_ids))
    reply = "PaymentFailed" if suspected else "PaymentProcessed"
    replies = published()
    assert {row.type for row in replies} == {reply}
    assert {row.payload["order_id"] for row in replies} == set(map(str, order_ids))
    if not asked_before:
        assert len(replies) == len(order_ids)

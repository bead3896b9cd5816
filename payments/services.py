"""Charging and refunding cards through the gateway, once the fraud screen lets us."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.events import Verdict
from gateway import client as gateway
from messaging.publishing import publish
from orders.events import Workflow

from . import breaker
from .events import (
    PaymentDeferred,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    PaymentVoided,
)
from .models import Payment, Refund, Screening

logger = logging.getLogger(__name__)

# PaymentFailed's reason_code for an order the fraud screen suspects: never charged.
SUSPECTED_FRAUD = "suspected_fraud"


def _reply_charge(payment: Payment, workflow: Workflow) -> None:
    reply = (
        PaymentProcessed(
            order_id=payment.order_id,
            payment_id=payment.id,
            amount=payment.amount,
            currency=payment.currency,
            workflow=workflow,
        )
        if payment.was_captured
        else PaymentFailed(
            order_id=payment.order_id,
            reason_code=payment.failure_code,
            reason=payment.failure_reason,
            workflow=workflow,
        )
    )
    # In the order's conversation whatever caused it: the fraud screen's verdict
    # too, however the stream processor correlates what it publishes.
    publish(reply, correlation_id=str(payment.order_id))


@dataclass(frozen=True)
class Charge:
    """What charging an order's card takes: the amount, and the card's token from the gateway."""

    order_id: UUID
    amount: Decimal
    currency: str
    card_token: str
    card_last4: str


def _charge_once(charge: Charge) -> tuple[Payment, bool]:
    """The order's one payment, charged now unless it exists; and whether it was made now.

    A gateway timeout propagates, so the delivery is retried; the idempotency
    key makes the retry return the first charge instead of taking money twice.
    """
    existing = _locked_payment(charge.order_id)
    if existing is not None:
        return existing, False
    # The row goes in before the gateway is called: a concurrent refund or
    # void of this order waits on it (unique order_id) instead of voiding an
    # order whose card is being charged.
    payment = _payment_create(charge, status=Payment.Status.PROCESSING)
    try:
        charged = breaker.call(
            gateway.charge,
            token=charge.card_token,
            amount=charge.amount,
            currency=charge.currency,
            idempotency_key=f"order-{charge.order_id}",
        )
    except gateway.CardDeclined as declined:
        payment.status, payment.failure_code = Payment.Status.FAILED, declined.code
        payment.failure_reason = declined.message
    except gateway.GatewayError as refused:
        payment.status, payment.failure_code = Payment.Status.FAILED, "gateway_error"
        payment.failure_reason = f"The payment could not be processed: {refused}"[:200]
    else:
        payment.status, payment.gateway_charge_id = Payment.Status.CAPTURED, charged.charge_id
    payment.save()
    return payment, True


def _refuse_once(charge: Charge, *, reason: str) -> tuple[Payment, bool]:
    """The order's one payment, refused as suspected fraud unless it exists; and whether now.

    The gateway is never called: no money is asked for, so none is ever to refund.
    """
    existing = _locked_payment(charge.order_id)
    if existing is not None:
        return existing, False
    payment = _payment_create(
        charge,
        status=Payment.Status.FAILED,
        failure_code=SUSPECTED_FRAUD,
        failure_reason=reason[:200],
    )
    return payment, True


def _payment_create(charge: Charge, **state) -> Payment:
    return Payment.objects.create(
        order_id=charge.order_id,
        amount=charge.amount,
        currency=charge.currency,
        card_last4=charge.card_last4,
        **state,
    )


def _locked_screening(order_id: UUID) -> Screening:
    """The order's screening row, made if missing, locked until the transaction ends.

    INSERT ... ON CONFLICT DO NOTHING waits for a concurrent insert of the same
    order to end, and the lock then makes the charge request and the verdict,
    handled at once in two processes, take turns: the second sees the first.
    """
    Screening.objects.bulk_create([Screening(order_id=order_id)], ignore_conflicts=True)
    return Screening.objects.select_for_update().get(order_id=order_id)


def _settle(charge: Charge, screening: Screening | None) -> tuple[Payment, bool]:
    """Charge the order, or refuse it if the fraud screen suspects it; once either way."""
    if screening is not None and screening.is_suspected:
        return _refuse_once(charge, reason=screening.reason or "Suspected fraud")
    return _charge_once(charge)


def _charge_when_screened(charge: Charge, workflow: Workflow) -> tuple[Payment | None, bool]:
    """The order's payment, settled now if it may be, and whether it was settled now.

    With FRAUD_SCREENING on, an order without the fraud screen's verdict is not
    charged: the request is kept on its screening row (None is returned) and
    the verdict settles it (payment_screening_record). An order that already
    has a payment (charged, refused or voided) is answered from it.
    """
    if not settings.FRAUD_SCREENING:
        return _charge_once(charge)
    screening = _locked_screening(charge.order_id)
    if screening.has_verdict or Payment.objects.filter(order_id=charge.order_id).exists():
        return _settle(charge, screening)
    if screening.requested_at is None:
        screening.requested_at = timezone.now()
    screening.amount, screening.currency = charge.amount, charge.currency
    screening.card_token, screening.card_last4 = charge.card_token, charge.card_last4
    screening.workflow = workflow
    screening.save()
    return None, False


@transaction.atomic(savepoint=False)
def payment_charge(*, charge: Charge) -> Payment | None:
    """Charge a placed order's card once (with fraud screening, once the screen cleared it);
    the first time, publishes PaymentProcessed or PaymentFailed.

    Returns None while the order waits for its verdict: the verdict settles it.
    """
    payment, is_new = _charge_when_screened(charge, Workflow.CHOREOGRAPHY)
    if is_new and payment is not None:  # a new one is a payment, never None
        _reply_charge(payment, Workflow.CHOREOGRAPHY)
    return payment


@transaction.atomic(savepoint=False)
def payment_charge_on_request(*, charge: Charge) -> Payment | None:
    """Charge the card once on the saga's request, answering every time it is asked, once the
    order may be charged (with fraud screening, once the screen cleared or suspected it).

    Returns None, answering nothing yet, while the order waits for its verdict:
    the verdict settles it and answers the saga.
    """
    payment, _ = _charge_when_screened(charge, Workflow.ORCHESTRATION)
    if payment is not None:
        _reply_charge(payment, Workflow.ORCHESTRATION)
    return payment


@transaction.atomic(savepoint=False)
def payment_screening_record(
    *, order_id: UUID, verdict: Verdict, rule: str, reason: str
) -> Payment | None:
    """Keep the fraud screen's verdict on an order; a charge that waited for it is made, or
    refused as suspected fraud, and answered in its workflow (PaymentProcessed or PaymentFailed).

    The first verdict stands: another one later changes nothing. A verdict with
    no charge waiting is kept for the charge request to find (with
    FRAUD_SCREENING off, that request does not look). Returns the payment settled now, if any.
    """
    screening = _locked_screening(order_id)
    if not screening.has_verdict:
        screening.verdict, screening.rule = verdict, rule[:100]
        screening.reason, screening.screened_at = reason[:300], timezone.now()
        screening.save()
    elif screening.verdict != verdict:
        logger.warning(
            "Order %s was screened %s before; %s ignored", order_id, screening.verdict, verdict
        )
    if screening.requested_at is None:
        return None
    assert screening.amount is not None  # kept with requested_at, by the charge request
    waiting = Charge(
        order_id=order_id,
        amount=screening.amount,
        currency=screening.currency,
        card_token=screening.card_token,
        card_last4=screening.card_last4,
    )
    payment, is_new = _settle(waiting, screening)
    if not is_new:
        return None
    _reply_charge(payment, Workflow(screening.workflow))
    return payment


# What a deferred payment waits on, as the order's reason says it.
GATEWAY_UNAVAILABLE = "the card gateway is unavailable"


@transaction.atomic(savepoint=False)
def payment_deferral_announce(*, order_id: UUID, workflow: Workflow | None) -> None:
    """Publish PaymentDeferred: the order's payment waits for the card gateway to come back.

    Without a workflow (the fraud screen's verdict names none), the one its
    charge request was kept with, else choreography.
    """
    if workflow is None:
        screening = Screening.objects.filter(order_id=order_id).first()
        workflow = Workflow(screening.workflow) if screening and screening.workflow else None
    event = PaymentDeferred(
        order_id=order_id, reason=GATEWAY_UNAVAILABLE, workflow=workflow or Workflow.CHOREOGRAPHY
    )
    publish(event, correlation_id=str(order_id))


def _locked_payment(order_id: UUID) -> Payment | None:
    return Payment.objects.select_for_update().filter(order_id=order_id).first()


@transaction.atomic(savepoint=False)
def payment_refund(*, order_id: UUID, reason_code: str, reason: str) -> Refund | None:
    """Give back everything an order's payment captured, at most once; publishes PaymentRefunded.

    An order with nothing captured is left as it is, and None is returned.
    """
    payment = _locked_payment(order_id)
    if payment is None or payment.status != Payment.Status.CAPTURED:
        return None
    return _refund(payment, reason_code=reason_code, reason=reason, workflow=Workflow.CHOREOGRAPHY)


@transaction.atomic(savepoint=False)
def payment_refund_or_void(*, order_id: UUID, reason_code: str, reason: str) -> Refund | None:
    """The order ended: money it captured goes back, and a charge not yet made never will be.

    Publishes PaymentRefunded, or PaymentVoided for an order with no payment yet.
    """
    payment = _locked_payment(order_id)
    if payment is None:
        return _void(
            order_id=order_id,
            reason_code=reason_code,
            reason=reason,
            workflow=Workflow.CHOREOGRAPHY,
        )
    if payment.status != Payment.Status.CAPTURED:
        return None
    return _refund(payment, reason_code=reason_code, reason=reason, workflow=Workflow.CHOREOGRAPHY)


@transaction.atomic(savepoint=False)
def payment_refund_on_request(*, order_id: UUID, reason_code: str, reason: str) -> Refund | None:
    """Refund, or void if nothing was captured, on the saga's request; answers every time.

    An order refunded before gets PaymentRefunded again, one with nothing
    captured (declined, voided) PaymentVoided.
    """
    workflow = Workflow.ORCHESTRATION
    payment = _locked_payment(order_id)
    if payment is None:
        return _void(order_id=order_id, reason_code=reason_code, reason=reason, workflow=workflow)
    if payment.status == Payment.Status.CAPTURED:
        return _refund(payment, reason_code=reason_code, reason=reason, workflow=workflow)
    if payment.status == Payment.Status.REFUNDED:
        # The answer says why the money went back then, whatever is asked now.
        refund = payment.refund
        first_code = refund.reason_code or reason_code
        _publish_refunded(payment, refund.amount, first_code, refund.reason, workflow)
        return refund
    _publish_voided(order_id, reason_code, reason, workflow)
    return None


def _void(*, order_id: UUID, reason_code: str, reason: str, workflow: Workflow) -> Refund | None:
    """Void an order that has no payment yet, so that no charge of it can be made any more.

    The voided row goes in first: its unique order_id makes a charge under
    way wait for this transaction (and then find the order voided), or makes
    us wait for that charge to commit (and retry, to refund it). No charge
    can reach the gateway from now on.
    """
    payment = Payment.objects.create(
        order_id=order_id,
        amount=0,
        currency=settings.SHOP_CURRENCY,
        card_last4="",
        status=Payment.Status.VOIDED,
        failure_code="voided",
        failure_reason="Voided before any charge",
    )
    charged = breaker.call(gateway.charge_lookup, idempotency_key=f"order-{order_id}")
    if not charged:
        _publish_voided(order_id, reason_code, reason, workflow)
        return None
    # The card was charged but our record of it was lost (the worker died
    # between the gateway's answer and its commit): refund that charge. The
    # refund's key names the charge, not this row, which a retry of this
    # transaction would make anew.
    payment.amount, payment.currency = charged.amount, charged.currency
    payment.status, payment.gateway_charge_id = Payment.Status.CAPTURED, charged.charge_id
    payment.failure_code = payment.failure_reason = ""
    payment.save()
    return _refund(
        payment,
        reason_code=reason_code,
        reason=reason,
        workflow=workflow,
        idempotency_key=f"refund-{charged.charge_id}",
    )


def _publish_voided(order_id: UUID, reason_code: str, reason: str, workflow: Workflow) -> None:
    publish(
        PaymentVoided(order_id=order_id, reason_code=reason_code, reason=reason, workflow=workflow)
    )


def _refund(
    payment: Payment,
    *,
    reason_code: str,
    reason: str,
    workflow: Workflow,
    idempotency_key: str | None = None,
) -> Refund:
    amount = payment.amount - payment.amount_refunded
    result = breaker.call(
        gateway.refund,
        charge_id=payment.gateway_charge_id,
        amount=amount,
        idempotency_key=idempotency_key or f"refund-{payment.id}",
    )
    refund = Refund.objects.create(
        payment=payment,
        amount=amount,
        reason_code=reason_code[:30],
        reason=reason[:300],
        gateway_refund_id=result.refund_id,
    )
    payment.amount_refunded += amount
    payment.status = Payment.Status.REFUNDED
    payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    _publish_refunded(payment, amount, reason_code, reason, workflow)
    return refund


def _publish_refunded(
    payment: Payment, amount, reason_code: str, reason: str, workflow: Workflow
) -> None:
    publish(
        PaymentRefunded(
            order_id=payment.order_id,
            payment_id=payment.id,
            amount=amount,
            currency=payment.currency,
            reason_code=reason_code,
            reason=reason,
            workflow=workflow,
        )
    )

"""Charging and refunding cards through the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db import transaction

from gateway import client as gateway
from messaging.publishing import publish
from orders.events import Workflow

from . import breaker
from .events import PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided
from .models import Payment, Refund


def _reply_charge(payment: Payment, workflow: Workflow) -> None:
    if payment.was_captured:
        publish(
            PaymentProcessed(
                order_id=payment.order_id,
                payment_id=payment.id,
                amount=payment.amount,
                currency=payment.currency,
                workflow=workflow,
            )
        )
    else:
        publish(
            PaymentFailed(
                order_id=payment.order_id,
                reason_code=payment.failure_code,
                reason=payment.failure_reason,
                workflow=workflow,
            )
        )


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
    existing = Payment.objects.select_for_update().filter(order_id=charge.order_id).first()
    if existing is not None:
        return existing, False
    # The row goes in before the gateway is called: a concurrent refund or
    # void of this order waits on it (unique order_id) instead of voiding an
    # order whose card is being charged.
    payment = Payment.objects.create(
        order_id=charge.order_id,
        amount=charge.amount,
        currency=charge.currency,
        card_last4=charge.card_last4,
        status=Payment.Status.PROCESSING,
    )
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


@transaction.atomic(savepoint=False)
def payment_charge(*, charge: Charge) -> Payment:
    """Charge a placed order's card once; the first time, publishes PaymentProcessed or
    PaymentFailed."""
    payment, is_new = _charge_once(charge)
    if is_new:
        _reply_charge(payment, Workflow.CHOREOGRAPHY)
    return payment


@transaction.atomic(savepoint=False)
def payment_charge_on_request(*, charge: Charge) -> Payment:
    """Charge the card once on the saga's request, answering every time it is asked."""
    payment, _ = _charge_once(charge)
    _reply_charge(payment, Workflow.ORCHESTRATION)
    return payment


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

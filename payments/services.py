"""Charging and refunding cards through the gateway."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db import transaction

from gateway import client as gateway
from messaging.publishing import publish

from . import breaker
from .events import PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided
from .models import Payment, Refund


def _reply_charge(payment: Payment, workflow: str) -> None:
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


@transaction.atomic(savepoint=False)
def payment_charge(
    *,
    order_id: UUID,
    amount: Decimal,
    currency: str,
    card_token: str,
    card_last4: str,
    workflow: str = "choreography",
    reply_again: bool = False,
) -> Payment:
    """Charge an order's card once; publishes PaymentProcessed or PaymentFailed.

    A gateway timeout propagates, so the delivery is retried; the idempotency
    key makes the retry return the first charge instead of taking money twice.
    Asked again for an order already settled, it only repeats the answer when
    ``reply_again`` (a command expects a reply every time).
    """
    existing = Payment.objects.select_for_update().filter(order_id=order_id).first()
    if existing is not None:
        if reply_again:
            _reply_charge(existing, workflow)
        return existing
    # The row goes in before the gateway is called: a concurrent refund or
    # void of this order waits on it (unique order_id) instead of voiding an
    # order whose card is being charged.
    payment = Payment.objects.create(
        order_id=order_id,
        amount=amount,
        currency=currency,
        card_last4=card_last4,
        status=Payment.Status.PROCESSING,
    )
    try:
        charge = breaker.call(
            gateway.charge,
            token=card_token,
            amount=amount,
            currency=currency,
            idempotency_key=f"order-{order_id}",
        )
    except gateway.CardDeclined as declined:
        payment.status, payment.failure_code = Payment.Status.FAILED, declined.code
        payment.failure_reason = declined.message
    except gateway.GatewayError as refused:
        payment.status, payment.failure_code = Payment.Status.FAILED, "gateway_error"
        payment.failure_reason = f"The payment could not be processed: {refused}"[:200]
    else:
        payment.status, payment.gateway_charge_id = Payment.Status.CAPTURED, charge.charge_id
    payment.save()
    _reply_charge(payment, workflow)
    return payment


@transaction.atomic(savepoint=False)
def payment_refund(
    *,
    order_id: UUID,
    reason_code: str,
    reason: str,
    workflow: str = "choreography",
    reply_again: bool = False,
    void_uncharged: bool = False,
) -> Refund | None:
    """Give back everything an order's payment captured, at most once.

    Publishes PaymentRefunded. An order with no payment yet gets a voided
    one instead, when ``void_uncharged`` (its order has ended) or
    ``reply_again`` (a command), so that a charge still on its way (a retry,
    a late command) is refused; PaymentVoided is published. With
    ``reply_again`` an order already settled gets its answer again; otherwise
    nothing more happens and None is returned.
    """
    payment = Payment.objects.select_for_update().filter(order_id=order_id).first()
    if payment is not None and payment.status == Payment.Status.CAPTURED:
        return _refund(payment, reason_code=reason_code, reason=reason, workflow=workflow)
    if payment is None and (void_uncharged or reply_again):
        # The voided row goes in first: its unique order_id makes a charge
        # under way wait for this transaction (and then find the order
        # voided), or makes us wait for that charge to commit (and retry, to
        # refund it). No charge can reach the gateway from now on.
        payment = Payment.objects.create(
            order_id=order_id,
            amount=0,
            currency=settings.SHOP_CURRENCY,
            card_last4="",
            status=Payment.Status.VOIDED,
            failure_code="voided",
            failure_reason="Voided before any charge",
        )
        if charged := breaker.call(gateway.charge_lookup, idempotency_key=f"order-{order_id}"):
            # The card was charged but our record of it was lost (the worker
            # died between the gateway's answer and its commit): refund that
            # charge. The refund's key names the charge, not this row, which
            # a retry of this transaction would make anew.
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
        _publish_voided(order_id, reason_code, reason, workflow)
        return None
    if not reply_again:
        return None
    if payment.status == Payment.Status.REFUNDED:
        refund = payment.refund
        _publish_refunded(payment, refund.amount, reason_code, refund.reason, workflow)
        return refund
    _publish_voided(order_id, reason_code, reason, workflow)
    return None


def _publish_voided(order_id: UUID, reason_code: str, reason: str, workflow: str) -> None:
    publish(
        PaymentVoided(order_id=order_id, reason_code=reason_code, reason=reason, workflow=workflow)
    )


def _refund(
    payment: Payment,
    *,
    reason_code: str,
    reason: str,
    workflow: str,
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
        payment=payment, amount=amount, reason=reason[:300], gateway_refund_id=result.refund_id
    )
    payment.amount_refunded += amount
    payment.status = Payment.Status.REFUNDED
    payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    _publish_refunded(payment, amount, reason_code, reason, workflow)
    return refund


def _publish_refunded(
    payment: Payment, amount, reason_code: str, reason: str, workflow: str
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

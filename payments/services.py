"""Charging and refunding cards through the gateway."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from django.db import transaction

from gateway import client as gateway
from messaging.publishing import publish

from .events import PaymentFailed, PaymentProcessed, PaymentRefunded
from .models import Payment, Refund


@transaction.atomic
def payment_charge(
    *, order_id: UUID, amount: Decimal, currency: str, card_token: str, card_last4: str
) -> Payment:
    """Charge an order's card once; publishes PaymentProcessed or PaymentFailed.

    A gateway timeout propagates, so the delivery is retried; the idempotency
    key makes the retry return the first charge instead of taking money twice.
    """
    existing = Payment.objects.filter(order_id=order_id).first()
    if existing is not None:
        return existing
    payment = Payment(order_id=order_id, amount=amount, currency=currency, card_last4=card_last4)
    try:
        charge = gateway.charge(
            token=card_token, amount=amount, currency=currency, idempotency_key=f"order-{order_id}"
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
    if payment.status == Payment.Status.CAPTURED:
        publish(
            PaymentProcessed(
                order_id=order_id, payment_id=payment.id, amount=amount, currency=currency
            )
        )
    else:
        publish(
            PaymentFailed(
                order_id=order_id, reason_code=payment.failure_code, reason=payment.failure_reason
            )
        )
    return payment


@transaction.atomic
def payment_refund(*, order_id: UUID, reason_code: str, reason: str) -> Refund | None:
    """Give back everything an order's payment captured, at most once.

    Returns None when there is nothing to refund (never captured, or already
    refunded). Publishes PaymentRefunded.
    """
    payment = Payment.objects.select_for_update().filter(order_id=order_id).first()
    if payment is None or payment.status != Payment.Status.CAPTURED:
        return None
    amount = payment.amount - payment.amount_refunded
    result = gateway.refund(
        charge_id=payment.gateway_charge_id, amount=amount, idempotency_key=f"refund-{payment.id}"
    )
    refund = Refund.objects.create(
        payment=payment, amount=amount, reason=reason[:300], gateway_refund_id=result.refund_id
    )
    payment.amount_refunded += amount
    payment.status = Payment.Status.REFUNDED
    payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    publish(
        PaymentRefunded(
            order_id=order_id,
            payment_id=payment.id,
            amount=amount,
            currency=payment.currency,
            reason_code=reason_code,
            reason=reason,
        )
    )
    return refund

"""Payments' rows."""

import uuid
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from payments.models import Payment, Refund
from tests.gateway.factories import GatewayChargeFactory


def _uncaptured(status: str, failure_code: str, failure_reason: str, **more) -> factory.Trait:
    """A payment that holds no money, and so has no charge at the gateway."""
    return factory.Trait(
        status=status,
        failure_code=failure_code,
        failure_reason=failure_reason,
        gateway_charge_id="",
        **more,
    )


class PaymentFactory(DjangoModelFactory):
    """An order's payment, captured by default (with its charge at the gateway, so it can be
    refunded); the traits give the other ends a payment can come to."""

    class Meta:
        model = Payment
        skip_postgeneration_save = True

    order_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("20.00")
    currency = "EUR"
    card_last4 = "4242"
    status = Payment.Status.CAPTURED
    amount_refunded = Decimal("0")
    gateway_charge_id = factory.LazyAttribute(
        lambda payment: (
            GatewayChargeFactory(
                idempotency_key=f"order-{payment.order_id}",
                amount=payment.amount,
                currency=payment.currency,
                refunded=payment.amount_refunded,
            ).charge_id
        )
    )

    class Params:
        declined = _uncaptured(
            Payment.Status.FAILED, "card_declined", "Your card was declined.", card_last4="0002"
        )
        voided = _uncaptured(
            Payment.Status.VOIDED,
            "voided",
            "Voided before any charge",
            amount=Decimal("0"),
            card_last4="",
        )
        refunded = factory.Trait(
            status=Payment.Status.REFUNDED,
            amount_refunded=factory.SelfAttribute("amount"),
            refund=factory.RelatedFactory(
                "tests.payments.factories.RefundFactory", factory_related_name="payment"
            ),
        )


class RefundFactory(DjangoModelFactory):
    class Meta:
        model = Refund

    payment = factory.SubFactory(
        PaymentFactory, status=Payment.Status.REFUNDED, amount_refunded=Decimal("20.00")
    )
    amount = factory.SelfAttribute("payment.amount")
    reason = "Out of stock: MUG-1 (1 ordered, 0 available)"
    gateway_refund_id = factory.Sequence(lambda n: f"re_test{n:08d}")

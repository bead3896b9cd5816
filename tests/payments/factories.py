"""Payments' rows, the gateway's records behind them, and the orders' messages every app takes."""

import uuid
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from gateway.models import CardToken, Charge, Outage
from gateway.routers import GATEWAY_DB
from orders.events import Address, OrderCancelled, OrderCompleted, OrderPlaced, PlacedLine
from payments.models import Payment, Refund

VALID_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
TIMEOUT_CARD = "4000000000000119"


# --- The gateway's records (on its own connection, as the router sends them) ---


class CardTokenFactory(DjangoModelFactory):
    """A card exchanged for a token; a test card number chooses the gateway's answer."""

    class Meta:
        model = CardToken
        database = GATEWAY_DB

    token = factory.Sequence(lambda n: f"tok_test{n:08d}")
    card_number = VALID_CARD
    last4 = factory.LazyAttribute(lambda token: token.card_number[-4:])


class GatewayChargeFactory(DjangoModelFactory):
    """Money the gateway captured under an idempotency key."""

    class Meta:
        model = Charge
        database = GATEWAY_DB

    charge_id = factory.Sequence(lambda n: f"ch_test{n:08d}")
    idempotency_key = factory.Sequence(lambda n: f"order-{uuid.UUID(int=n)}")
    token = factory.LazyFunction(lambda: CardTokenFactory().token)
    amount = Decimal("20.00")
    currency = "EUR"
    status = Charge.Status.SUCCEEDED
    attempts = 1


class OutageFactory(DjangoModelFactory):
    """While it is on, the gateway refuses every connection."""

    class Meta:
        model = Outage
        database = GATEWAY_DB

    note = "unit test drill"


# --- Payments' own rows ---


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
    reason = "Out of stock: MUG-1 (0 of 1 available)"
    gateway_refund_id = factory.Sequence(lambda n: f"re_test{n:08d}")


# --- The orders' messages (orders publishes them; every app here takes some) ---


class AddressFactory(factory.Factory):
    class Meta:
        model = Address

    name = "Ada Lovelace"
    line1 = "12 St James's Square"
    city = "London"
    postal_code = "SW1Y 4JH"
    country = "GB"


class PlacedLineFactory(factory.Factory):
    class Meta:
        model = PlacedLine

    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = factory.LazyAttribute(lambda line: f"Product {line.sku}")
    quantity = 1
    unit_price = Decimal("10.00")


class OrderPlacedFactory(factory.Factory):
    """A placed order of one line. Given a ``card`` number, its token is one the gateway knows
    (payments' tests); else the token is never used."""

    class Meta:
        model = OrderPlaced

    order_id = factory.LazyFunction(uuid.uuid4)
    email = "ada@example.com"
    lines = factory.List([factory.SubFactory(PlacedLineFactory)])
    total = factory.LazyAttribute(
        lambda order: sum((line.unit_price * line.quantity for line in order.lines), Decimal(0))
    )
    currency = "EUR"
    shipping_address = factory.SubFactory(AddressFactory)
    card_token = factory.Maybe(
        "card",
        factory.LazyAttribute(lambda order: CardTokenFactory(card_number=order.card).token),
        "tok_never_charged",
    )
    card_last4 = factory.Maybe("card", factory.LazyAttribute(lambda order: order.card[-4:]), "4242")

    class Params:
        card = None


class OrderCancelledFactory(factory.Factory):
    class Meta:
        model = OrderCancelled

    order_id = factory.LazyFunction(uuid.uuid4)
    reason_code = "customer"
    reason = "Cancelled by the customer"


class OrderCompletedFactory(factory.Factory):
    class Meta:
        model = OrderCompleted

    order_id = factory.LazyFunction(uuid.uuid4)
    tracking_number = factory.Sequence(lambda n: f"PP{n:012d}")

"""The messages the processors read, as factories (the orders' own are in tests/support)."""

import uuid
from decimal import Decimal

import factory
from django.utils import timezone

from analytics.models import FraudClearance, FraudFlag
from inventory.events import InventoryReservationFailed, ShortLine
from payments.events import PaymentFailed, PaymentProcessed, PaymentRefunded


class PaymentProcessedFactory(factory.Factory):
    class Meta:
        model = PaymentProcessed

    order_id = factory.LazyFunction(uuid.uuid4)
    payment_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("20.00")
    currency = "EUR"


class PaymentFailedFactory(factory.Factory):
    """A payment the card's issuer declined; ``reason_code`` gives the other failures."""

    class Meta:
        model = PaymentFailed

    order_id = factory.LazyFunction(uuid.uuid4)
    reason_code = "card_declined"
    reason = "Your card was declined."


class PaymentRefundedFactory(factory.Factory):
    class Meta:
        model = PaymentRefunded

    order_id = factory.LazyFunction(uuid.uuid4)
    payment_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("20.00")
    currency = "EUR"
    reason_code = "out_of_stock"
    reason = "Out of stock"


class ShortLineFactory(factory.Factory):
    class Meta:
        model = ShortLine

    sku = factory.Sequence(lambda n: f"SKU-{n}")
    requested = 2
    available = 0


class InventoryReservationFailedFactory(factory.Factory):
    class Meta:
        model = InventoryReservationFailed

    order_id = factory.LazyFunction(uuid.uuid4)
    reason = "Not enough stock"
    short = factory.List([factory.SubFactory(ShortLineFactory)])


class FraudClearanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FraudClearance

    key_kind = "card"
    key = "fp_card"
    cleared_by = "staff@example.com"
    note = "Known customer"


class FraudFlagFactory(factory.django.DjangoModelFactory):
    """A velocity rule that fired for an order placed with a card, just now."""

    class Meta:
        model = FraudFlag

    order_id = factory.LazyFunction(uuid.uuid4)
    rule = "orders_per_card"
    key_kind = "card"
    key = "fp_card"
    count = 6
    limit = 5
    window_seconds = 600
    reason = "Suspected fraud: 6 orders from this card within 10 minutes (more than 5 allowed)"
    fired_at = factory.LazyFunction(timezone.now)

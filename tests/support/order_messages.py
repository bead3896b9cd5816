"""The orders' messages, as factories: orders publishes them, and every other app takes some."""

import uuid
from decimal import Decimal

import factory

from gateway.client import card_fingerprint
from orders.events import Address, OrderCancelled, OrderCompleted, OrderPlaced, PlacedLine
from tests.gateway.factories import CardTokenFactory


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
    card_fingerprint = factory.Maybe(
        "card", factory.LazyAttribute(lambda order: card_fingerprint(order.card)), ""
    )

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

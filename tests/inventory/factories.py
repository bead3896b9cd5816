"""Inventory's rows: the catalog with its stock, orders' lines waiting for payment, reservations."""

import uuid
from decimal import Decimal

import factory
from django.db.models import F
from factory.django import DjangoModelFactory

from inventory.models import OrderRequest, Product, Reservation, ReservationLine


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    name = factory.LazyAttribute(lambda product: f"Product {product.sku}")
    price = Decimal("10.00")
    on_hand = 10


class OrderRequestFactory(DjangoModelFactory):
    """A placed order's lines, as inventory keeps them until the order is paid."""

    class Meta:
        model = OrderRequest

    order_id = factory.LazyFunction(uuid.uuid4)
    lines = factory.LazyFunction(lambda: [{"sku": ProductFactory().sku, "quantity": 1}])


class ReservationLineFactory(DjangoModelFactory):
    class Meta:
        model = ReservationLine

    reservation = factory.SubFactory("tests.inventory.factories.ReservationFactory")
    product = factory.SubFactory(ProductFactory)
    quantity = 1


# What a reservation's lines did to their products' stock, by the reservation's status.
_STOCK_MOVED = {
    Reservation.Status.RESERVED: lambda q: {"reserved": F("reserved") + q},
    Reservation.Status.SHIPPED: lambda q: {
        "on_hand": F("on_hand") - q,
        "shipped": F("shipped") + q,
    },
    Reservation.Status.RELEASED: lambda q: {},
}


class ReservationFactory(DjangoModelFactory):
    """An order's reservation; ``holding=[(product, quantity), ...]`` gives it lines, and the
    products' stock counts what they hold (reserved, or shipped)."""

    class Meta:
        model = Reservation
        skip_postgeneration_save = True

    order_id = factory.LazyFunction(uuid.uuid4)
    status = Reservation.Status.RESERVED

    @factory.post_generation
    def holding(reservation, create, extracted, **kwargs):
        for product, quantity in extracted or []:
            ReservationLineFactory(reservation=reservation, product=product, quantity=quantity)
            moved = _STOCK_MOVED[reservation.status](quantity)
            if moved:
                Product.objects.filter(pk=product.pk).update(**moved)
            product.refresh_from_db()

"""Stock never goes negative: 100 concurrent orders for the last 10 units."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connections
from django.db.models import Sum
from django.test import Client

from inventory.models import Product
from orders.models import Order
from payments.models import Payment
from tests.flow.conftest import order_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

ORDERS, UNITS = 100, 10


def place_one(sku: str) -> str:
    try:
        response = Client().post(
            "/api/orders/", order_body(items=[(sku, 1)]), content_type="application/json"
        )
        assert response.status_code == 202, response.content
        return response.json()["id"]
    finally:
        connections.close_all()


def test_a_hundred_concurrent_orders_for_the_last_ten_units(stock, stale_catalog):
    # Orders' copy of the catalog takes them all: inventory alone decides who gets a unit
    sku = stock(on_hand=UNITS, price="7.00")
    stale_catalog(sku)

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(place_one, [sku] * ORDERS))

    wait_for(
        lambda: (
            Order.objects.filter(pk__in=ids, status__in=["completed", "cancelled"]).count()
            == ORDERS
        ),
        timeout=240,
        what="every order to complete or be cancelled",
    )
    orders = Order.objects.filter(pk__in=ids)
    assert orders.filter(status="completed").count() == UNITS
    cancelled = orders.filter(status="cancelled")
    assert cancelled.count() == ORDERS - UNITS
    assert set(cancelled.values_list("cancel_reason_code", flat=True)) == {"out_of_stock"}

    product = Product.objects.get(sku=sku)
    assert (product.on_hand, product.reserved, product.shipped) == (0, 0, UNITS)

    payments = Payment.objects.filter(order_id__in=ids)
    assert payments.filter(status="captured").count() == UNITS
    assert payments.filter(status="refunded").count() == ORDERS - UNITS
    captured = payments.aggregate(total=Sum("amount"))["total"]
    refunded = payments.aggregate(total=Sum("amount_refunded"))["total"]
    assert captured - refunded == UNITS * Decimal("7.00")

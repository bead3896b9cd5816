"""Property: whatever the orders and failures, both workflows keep the books straight.

Hypothesis draws a product's stock and a batch of orders, each with its
workflow, card (succeeds, declined, insufficient funds, gateway timeouts),
quantity and destination (one the carrier refuses). They run concurrently
through the real workers; then every invariant must hold.
"""

import uuid
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.models import Charge
from inventory import services as inventory
from inventory.models import Product
from notifications.models import SentEmail
from orders.models import CatalogItem, Order
from orders.services import OrderItem, order_place
from payments.models import Payment
from shipping.models import Shipment
from tests.conftest import wait_for
from tests.flow.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CARDS = ["4242424242424242", "4000000000000002", "4000000000009995", "4000000000000119"]
PRICE = Decimal("6.00")

an_order = st.fixed_dictionaries(
    {
        "workflow": st.sampled_from(["choreography", "orchestration"]),
        "card": st.sampled_from(CARDS),
        "quantity": st.integers(min_value=1, max_value=3),
        "country": st.sampled_from(["FR", "FR", "FR", "AQ"]),
    }
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    on_hand=st.integers(min_value=0, max_value=6), orders=st.lists(an_order, min_size=1, max_size=6)
)
def test_every_order_ends_and_money_and_stock_add_up(app_workers, on_hand, orders):
    sku = f"P-{uuid.uuid4().hex[:8].upper()}"
    inventory.product_save(sku=sku, name="Property", price=PRICE, on_hand=on_hand)
    wait_for(lambda: CatalogItem.objects.filter(sku=sku).exists(), what="the catalog entry")

    ids = [
        order_place(
            email="p@example.com",
            items=[OrderItem(sku, spec["quantity"])],
            shipping_address=dict(ADDRESS, country=spec["country"]),
            card_number=spec["card"],
            workflow=spec["workflow"],
        ).pk
        for spec in orders
    ]

    # Every order ends completed or cancelled
    wait_for(
        lambda: (
            Order.objects.filter(pk__in=ids, status__in=["completed", "cancelled"]).count()
            == len(ids)
        ),
        timeout=120,
        what="every order to end",
    )
    placed = Order.objects.filter(pk__in=ids)

    # Money captured minus money refunded equals the total of completed orders
    payments = Payment.objects.filter(order_id__in=ids)
    captured = payments.filter(status__in=["captured", "refunded"]).aggregate(s=Sum("amount"))["s"]
    refunded = payments.aggregate(s=Sum("amount_refunded"))["s"]
    completed_total = placed.filter(status="completed").aggregate(s=Sum("total"))["s"]
    assert (captured or 0) - (refunded or 0) == (completed_total or 0)
    # and the gateway agrees
    charges = Charge.objects.filter(idempotency_key__in=[f"order-{pk}" for pk in ids])
    at_gateway = charges.filter(status="succeeded").aggregate(s=Sum("amount"))["s"] or 0
    back = charges.aggregate(s=Sum("refunded"))["s"] or 0
    assert at_gateway - back == (completed_total or 0)

    # Stock on hand plus stock shipped is conserved, and nothing stays reserved
    wait_for(
        lambda: Product.objects.filter(sku=sku, reserved=0).exists(),
        what="reservations of cancelled orders to be released",
    )
    product = Product.objects.get(sku=sku)
    assert product.on_hand + product.shipped == on_hand
    shipped = sum(o.lines.get().quantity for o in placed.filter(status="completed"))
    assert product.shipped == shipped

    # Every effect happened once
    assert payments.count() == len(ids)
    assert charges.count() <= len(ids)
    assert (
        not Shipment.objects.filter(order_id__in=ids)
        .values("order_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert (
        not SentEmail.objects.filter(order_id__in=ids)
        .values("order_id", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for order in placed.filter(status="completed"):
        assert Shipment.objects.get(order_id=order.pk).tracking_number

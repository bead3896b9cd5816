"""Property: whatever the orders and failures, both workflows keep the books straight.

Hypothesis draws a product's stock and a batch of orders, each with its
workflow, card (succeeds, declined, insufficient funds, gateway timeouts),
quantity and destination (one the carrier refuses). They run concurrently
through the real workers; then every invariant must hold.
"""

import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory import services as inventory
from orders.models import CatalogItem
from orders.services import OrderItem, order_place
from tests.flow.conftest import ADDRESS
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.support.waiting import wait_for

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
def test_every_order_ends_and_money_and_stock_add_up(app_workers, stale_catalog, on_hand, orders):
    sku = f"P-{uuid.uuid4().hex[:8].upper()}"
    inventory.product_save(sku=sku, name="Property", price=PRICE, on_hand=on_hand)
    wait_for(lambda: CatalogItem.objects.filter(sku=sku).exists(), what="the catalog entry")
    # Orders takes every order: the short and the unshippable end in the workers
    stale_catalog(sku)

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

    wait_until_all_closed(ids)
    assert_books_balance(ids, {sku: on_hand})

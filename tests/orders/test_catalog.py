"""One catalog: the products API and the storefront list what orders sells from,
and say so while it is still loading."""

import json

import pytest

from messaging.models import OutboxMessage
from orders.models import Order
from tests.flow.conftest import order_body
from tests.orders.factories import CatalogItemFactory
from tests.support.problems import problem_of

pytestmark = pytest.mark.django_db(databases="__all__")


def test_the_products_api_lists_orders_copy_of_the_catalog(client):
    # Given orders' copy: two products for sale, one withdrawn
    CatalogItemFactory(sku="MUG-001", name="Stoneware mug", price="12.50", available=40)
    CatalogItemFactory(sku="PEN-005", name="Brass pen", price="34.00", available=0)
    CatalogItemFactory(sku="OLD-009", is_active=False)

    # When a client lists the products
    response = client.get("/api/products/")

    # Then it sees what the storefront sells, withdrawn products left out
    assert response.status_code == 200
    assert response.json() == {
        "count": 2, "limit": 50, "offset": 0, "next": None, "previous": None,
        "results": [
            {"sku": "MUG-001", "name": "Stoneware mug", "price": "12.50", "currency": "EUR",
             "available": 40},
            {"sku": "PEN-005", "name": "Brass pen", "price": "34.00", "currency": "EUR",
             "available": 0},
        ],
    }  # fmt: skip


def test_while_the_catalog_loads_the_products_api_asks_to_retry(client):
    # Given a fresh start: no product has reached orders yet
    # When a client lists the products
    response = client.get("/api/products/")

    # Then it is told to come back, and when
    problem = problem_of(response, status=503, path="/api/products/")
    assert response["Retry-After"] == "2"
    assert problem["type"] == "/api/problems/catalog-loading"
    assert "catalog is loading" in problem["detail"]


def test_an_order_placed_while_the_catalog_loads_is_deferred_not_refused(client):
    # Given a fresh start: no product has reached orders yet
    # When a client places an order for a product inventory has
    response = client.post(
        "/api/orders/",
        json.dumps(order_body(items=[("MUG-001", 1)])),
        content_type="application/json",
    )

    # Then it is asked to retry shortly (not told there is no such product); nothing is written
    problem = problem_of(response, status=503, path="/api/orders/")
    assert response["Retry-After"] == "2"
    assert problem["type"] == "/api/problems/catalog-loading"
    assert "catalog is loading" in problem["detail"]
    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_once_one_product_has_arrived_an_unknown_one_is_refused(client):
    # Given a loaded catalog without the product asked for
    CatalogItemFactory(sku="MUG-001")

    # When a client orders another
    response = client.post(
        "/api/orders/",
        json.dumps(order_body(items=[("NOPE-1", 1)])),
        content_type="application/json",
    )

    # Then that product is named as not for sale
    assert problem_of(response, status=422, path="/api/orders/")["errors"] == {
        "items.0.sku": ["There is no product 'NOPE-1' for sale."]
    }


def test_while_the_catalog_loads_the_storefront_says_so_and_reloads_itself(client):
    # Given a fresh start: no product has reached orders yet
    # When a customer opens the storefront
    response = client.get("/")

    # Then it says the catalog is loading, and comes back by itself
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert b"The catalog is loading" in response.content
    assert b'<meta http-equiv="refresh" content="2">' in response.content

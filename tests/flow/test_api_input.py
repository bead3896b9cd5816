"""Bad input to the JSON API gets a clear error per field and writes nothing."""

import json

import pytest

from gateway.models import CardToken
from messaging.models import OutboxMessage
from orders.models import CatalogItem, Order
from tests.flow.conftest import order_body

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def catalog(db):
    from django.utils import timezone

    CatalogItem.objects.create(
        sku="MUG-1", name="Mug", price="12.50", currency="EUR", available=5, as_of=timezone.now()
    )
    return "MUG-1"


def post(client, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/orders/", data, content_type="application/json", **extra)


def assert_nothing_written():
    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert not CardToken.objects.exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address"),
        ({"items": []}, "items", "at least 1 item"),
        (
            {"items": [{"sku": "MUG-1", "quantity": 0}]},
            "items.0.quantity",
            "greater than or equal to 1",
        ),
        (
            {"items": [{"sku": "MUG-1", "quantity": -3}]},
            "items.0.quantity",
            "greater than or equal to 1",
        ),
        (
            {"items": [{"sku": "MUG-1", "quantity": 10**9}]},
            "items.0.quantity",
            "less than or equal to 100",
        ),
        ({"items": [{"sku": "MUG-1", "quantity": "2"}]}, "items.0.quantity", "valid integer"),
        ({"items": [{"sku": "MUG-1"}]}, "items.0.quantity", "Field required"),
        ({"shipping_address": {"name": "A"}}, "shipping_address.line1", "Field required"),
        ({"card_number": "12"}, "card_number", "at least 12 characters"),
        ({"workflow": "telepathy"}, "workflow", "Input should be 'choreography'"),
        ({"coupon": "FREE"}, "coupon", "Extra inputs are not permitted"),
    ],
)
def test_invalid_fields_are_named_with_the_reason(client, catalog, change, field, message):
    body = order_body(items=[(catalog, 1)])
    body.update(change)

    response = post(client, body)

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert field in errors, errors
    assert any(message in text for text in errors[field]), errors[field]
    assert_nothing_written()


def test_unknown_product_and_invalid_card_are_rejected_together(client, catalog):
    body = order_body(items=[(catalog, 1), ("NOPE-9", 1)], card_number="4242 4242 4242 4241")

    response = post(client, body)

    assert response.status_code == 422
    assert response.json()["errors"] == {
        "items.1.sku": ["There is no product 'NOPE-9' for sale."],
        "card_number": ["This card number is not valid (check the digits)."],
    }
    assert_nothing_written()


@pytest.mark.parametrize("body", ['{"email": ', "null", "[1, 2]", "not json at all"])
def test_malformed_json_is_rejected(client, catalog, body):
    response = post(client, body)

    assert response.status_code in (400, 422)
    assert response.json()["detail"]
    assert_nothing_written()


def test_oversized_body_is_rejected(client, catalog, settings):
    body = order_body(items=[(catalog, 1)], email="a@example.com")
    body["shipping_address"]["line1"] = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = post(client, body)

    assert response.status_code in (400, 413)
    assert_nothing_written()


def test_unknown_order_is_404_and_ids_are_not_enumerable(client):
    assert client.get("/api/orders/00000000-0000-0000-0000-000000000001/").status_code == 404
    assert client.get("/api/orders/1/").status_code in (404, 422)


def test_openapi_document_describes_the_api(client):
    document = client.get("/api/openapi.json").json()
    assert {"/api/orders/", "/api/orders/{order_id}/", "/api/products/"} <= set(document["paths"])
    post_order = document["paths"]["/api/orders/"]["post"]
    assert {"202", "422"} <= set(post_order["responses"])

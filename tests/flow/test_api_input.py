"""Bad input to the JSON API gets a clear error per field and writes nothing."""

import json

import pytest

from gateway.models import CardToken
from messaging.models import OutboxMessage
from orders.models import CatalogItem, Order
from tests.flow.conftest import ADDRESS, order_body
from tests.orders.factories import CatalogItemFactory
from tests.support.problems import problem_of

pytestmark = pytest.mark.django_db(databases="__all__")

# The longest address the order's email column holds: 64 + 1 + 189 = 254 characters.
LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"


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
        (
            {"items": [{"sku": "MUG-1", "quantity": 2**63}]},
            "items.0.quantity",
            "less than or equal to 100",
        ),
        ({"items": [{"sku": "MUG-1", "quantity": "2"}]}, "items.0.quantity", "valid integer"),
        ({"items": [{"sku": "MUG-1", "quantity": 1.5}]}, "items.0.quantity", "valid integer"),
        ({"items": [{"sku": "MUG-1", "quantity": True}]}, "items.0.quantity", "valid integer"),
        ({"items": [{"sku": "MUG-1", "quantity": 1}] * 51}, "items", "at most 50 items"),
        ({"items": [{"sku": "M" * 41, "quantity": 1}]}, "items.0.sku", "at most 40 characters"),
        ({"items": [{"sku": "MUG\x001", "quantity": 1}]}, "items.0.sku", "U+0000"),
        ({"email": "x" + LONGEST_EMAIL}, "email", "at most 254 characters"),
        (
            {"shipping_address": {**ADDRESS, "name": "é" * 201}},
            "shipping_address.name",
            "at most 200 characters",
        ),
        (
            {"shipping_address": {**ADDRESS, "postal_code": "1" * 21}},
            "shipping_address.postal_code",
            "at most 20 characters",
        ),
        (
            {"shipping_address": {**ADDRESS, "name": "Ada\x00Lovelace"}},
            "shipping_address.name",
            "Remove the control character U+0000 (character 4)",
        ),
        (
            {"shipping_address": {**ADDRESS, "city": "Lon\ndon"}},
            "shipping_address.city",
            "control character U+000A",
        ),
        (
            {"shipping_address": {**ADDRESS, "line1": "   "}},
            "shipping_address.line1",
            "at least 1 character",
        ),
        (
            {"shipping_address": {**ADDRESS, "country": "ÉÉ"}},
            "shipping_address.country",
            "'ÉÉ' is not an ISO 3166 country code",
        ),
        (
            {"shipping_address": {**ADDRESS, "country": "France"}},
            "shipping_address.country",
            "Enter a two-letter country code, e.g. FR.",
        ),
        ({"card_number": "4242 4242 4242 424²"}, "card_number", "12 to 19 digits"),
        ({"card_number": "４２４２４２４２４２４２４２４２"}, "card_number", "12 to 19 digits"),
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


@pytest.mark.parametrize(
    ("country", "message"),
    [
        ("AQ", "We cannot deliver to Antarctica (AQ): our carrier does not go there."),
        ("ZZ", "'ZZ' is not an ISO 3166 country code; use two capital letters, e.g. FR."),
        ("Fr", "Write the country code in capitals: 'FR'."),
        ("fr", "Write the country code in capitals: 'FR'."),
    ],
)
def test_a_destination_the_carrier_cannot_reach_is_refused_before_any_charge(
    client, catalog, country, message
):
    body = order_body(items=[(catalog, 1)], shipping_address={**ADDRESS, "country": country})

    response = post(client, body)

    problem = problem_of(response, status=422, path="/api/orders/")
    assert (problem["type"], problem["detail"]) == (
        "/api/problems/invalid-request",
        "The request is invalid.",
    )
    assert problem["errors"] == {"shipping_address.country": [message]}
    assert_nothing_written()


@pytest.mark.parametrize(
    ("items", "errors"),
    [
        pytest.param(
            [("MUG-1", 50)],
            {"items.0.quantity": ["Only 5 Mug (MUG-1) available; you asked for 50."]},
            id="more than available",
        ),
        pytest.param(
            [("MUG-1", 3), ("MUG-1", 3)],
            {
                f"items.{index}.quantity": [
                    "Only 5 Mug (MUG-1) available; you asked for 6 in all, on items 0 and 1."
                ]
                for index in (0, 1)
            },
            id="lines that together ask for more than available",
        ),
        pytest.param(
            [("LAMP-2", 60), ("LAMP-2", 60)],
            {
                f"items.{index}.quantity": [
                    "At most 100 Lamp (LAMP-2) per order; you asked for 120 in all, on items 0 "
                    "and 1."
                ]
                for index in (0, 1)
            },
            id="lines that together break the limit of 100",
        ),
    ],
)
def test_more_than_the_catalog_has_or_allows_is_refused_before_any_charge(
    client, catalog, items, errors
):
    CatalogItemFactory(sku="LAMP-2", name="Lamp", available=1000)

    response = post(client, order_body(items=items))

    problem = problem_of(response, status=422, path="/api/orders/")
    assert (problem["type"], problem["detail"]) == (
        "/api/problems/order-rejected",
        "The order was not placed.",
    )
    assert problem["errors"] == errors
    assert_nothing_written()


def test_the_longest_values_the_columns_hold_are_stored_whole(client, catalog):
    """Unicode at every length limit: accepted and stored as sent, never a database error."""
    address = {
        "name": "😀" * 200,
        "line1": "Rue de l'Église " + "é" * 184,
        "city": "東京" * 50,
        "postal_code": "Ω" * 20,
        "country": "FR",
    }
    body = order_body(items=[(catalog, 2)], email=LONGEST_EMAIL, shipping_address=address)

    response = post(client, body)

    assert response.status_code == 202, response.content
    order = Order.objects.get(pk=response.json()["id"])
    stored = (order.email, order.ship_name, order.ship_line1, order.ship_city)
    assert stored == (LONGEST_EMAIL, address["name"], address["line1"], address["city"])
    assert (order.ship_postal_code, order.ship_country) == ("Ω" * 20, "FR")


def test_a_whole_number_written_as_a_float_is_that_quantity(client, catalog):
    response = post(client, order_body(items=[(catalog, 2.0)]))

    assert response.status_code == 202, response.content
    assert Order.objects.get().lines.get().quantity == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"email": ', "not valid JSON: Expecting value at character 11"),
        ("not json at all", "not valid JSON: Expecting value at character 1"),
        ('{"email": "a@example.com",}', "not valid JSON: Expecting property name"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_malformed_json_is_rejected_with_where_it_breaks(client, catalog, body, reason):
    response = post(client, body)

    assert reason in problem_of(response, status=400, path="/api/orders/")["detail"]
    assert_nothing_written()


@pytest.mark.parametrize("body", ["null", "[1, 2]", '"an order"', "42"])
def test_json_that_is_not_an_object_is_rejected(client, catalog, body):
    response = post(client, body)

    assert response.status_code == 422
    assert response.json()["errors"] == {
        "body": ["Input should be a valid dictionary or object to extract fields from"]
    }
    assert_nothing_written()


def test_oversized_body_is_rejected_with_the_limit(client, catalog, settings):
    body = order_body(items=[(catalog, 1)], email="a@example.com")
    body["shipping_address"]["line1"] = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = post(client, body)

    problem = problem_of(response, status=413, path="/api/orders/")
    assert problem["detail"] == (
        f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
        "bytes this API accepts."
    )
    assert_nothing_written()


def test_thousands_of_lines_are_refused_whole(client, catalog):
    response = post(client, order_body(items=[(catalog, 1)] * 10_000))

    assert response.status_code == 422
    assert response.json()["errors"] == {
        "items": ["List should have at most 50 items after validation, not 10000"]
    }
    assert_nothing_written()


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        (
            "application/x-www-form-urlencoded",
            "this request's is application/x-www-form-urlencoded",
        ),
        ("text/plain", "this request's is text/plain"),
        ("", "this request has none"),
    ],
)
def test_a_body_not_sent_as_json_is_refused(client, catalog, content_type, named):
    body = json.dumps(order_body(items=[(catalog, 1)]))

    response = client.post("/api/orders/", body, content_type=content_type)

    problem = problem_of(response, status=415, path="/api/orders/")
    assert problem["detail"] == (
        f"Send the order as JSON, with Content-Type: application/json ({named})."
    )
    assert_nothing_written()


def test_unknown_order_is_404_and_ids_are_not_enumerable(client):
    unknown = "/api/orders/00000000-0000-0000-0000-000000000001/"
    assert problem_of(client.get(unknown), status=404, path=unknown)["detail"] == "No such order."
    # Not an id at all names no order either, as the order pages and streams answer
    for malformed in ("/api/orders/1/", "/api/orders/not-an-order/"):
        problem = problem_of(client.get(malformed), status=404, path=malformed)
        assert problem["detail"] == "No such order."


def test_openapi_document_describes_the_api(client):
    document = client.get("/api/openapi.json").json()
    assert {"/api/orders/", "/api/orders/{order_id}/", "/api/products/"} <= set(document["paths"])
    post_order = document["paths"]["/api/orders/"]["post"]
    assert set(post_order["responses"]) == {"202", "400", "409", "413", "415", "422", "503"}
    assert set(post_order["responses"]["202"]["headers"]) == {"Location", "Idempotent-Replayed"}
    assert [p["name"] for p in post_order["parameters"]] == ["Idempotency-Key"]
    get_order = document["paths"]["/api/orders/{order_id}/"]["get"]
    assert set(get_order["responses"]) == {"200", "404"}
    assert get_order["parameters"][0]["schema"]["format"] == "uuid"

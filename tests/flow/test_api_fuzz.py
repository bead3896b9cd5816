"""A fuzz test of the JSON API, generated from its own OpenAPI document.

For every operation, schemathesis sends requests that fit the document
(positive) and requests that break it (negative: wrong types, missing or
extra fields, out-of-range numbers, overlong strings, ...), in-process
through the WSGI application, and checks each answer:

- never a server error;
- the status code, content type and body are ones the document declares;
- a request that breaks the document is rejected with a 4xx;
- a request the API rejects writes nothing (orders, lines, outbox, sagas,
  card tokens);
- every error is RFC 9457 problem details, naming its reason in words, per
  field where there is one;
- a request that fits the document is accepted, unless it names a product
  that is not for sale, asks for more of one product over several lines
  than one order may hold, or gives a card number that fails its checksum
  (rules no JSON Schema can state), and then the error says exactly that.

Placed orders stay in the test's transaction: OrderPlaced is never handed to
the broker (on_commit never runs), so no worker or RabbitMQ is involved.
"""

import uuid
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.wsgi import application
from gateway.models import CardToken
from messaging.models import OutboxMessage
from orders import services
from orders.events import Workflow
from orders.models import CatalogItem, Order, OrderLine, OrderSaga
from orders.schemas import MAX_QUANTITY
from tests.flow.conftest import ADDRESS

pytestmark = pytest.mark.django_db(databases="__all__")

CATALOG = {"MUG-1": "12.50", "PEN-2": "3.00", "LAMP-3": "49.90"}
# More of each than an order may hold: what is refused as more than there is
# has tests of its own (tests/orders/test_services.py, test_api_input.py).
AVAILABLE = 10 * MAX_QUANTITY
VALID_CARDS = ["4242424242424242", "4242 4242 4242 4242", "4000-0000-0000-0002"]


def app_in_test_transaction(environ, start_response):
    """The project's WSGI application, answering inside the test's transaction.

    As Django's own test client does, keep the request signals from closing
    the test's connection (its transaction is not in autocommit mode).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app_in_test_transaction)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=100
)


@pytest.fixture
def catalog(db):
    now = timezone.now()
    for sku, price in CATALOG.items():
        CatalogItem.objects.create(
            sku=sku,
            name=f"Product {sku}",
            price=price,
            currency="EUR",
            available=AVAILABLE,
            as_of=now,
        )


def rows() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Order, OrderLine, OrderSaga, OutboxMessage, CardToken)
    }


def is_positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE


def assert_readable_error(response) -> None:
    """An error is problem details that say what is wrong in words, and per field when they
    list fields."""
    # schemathesis keeps headers by lowercase name, each a list of its values.
    [content_type] = response.headers["content-type"]
    assert content_type.startswith("application/problem+json"), content_type
    body = response.json()
    assert isinstance(body, dict), body
    assert {"type", "title", "status", "detail", "instance"} <= set(body), body
    assert body["status"] == response.status_code, body
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), body
    for field, messages in body.get("errors", {}).items():
        assert field, body
        assert messages and all(isinstance(m, str) and m.strip() for m in messages), body


def beyond_the_unstatable_rules(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The errors that are not about a product not for sale, the limit per product over
    several lines, or the card number's checksum."""
    return {
        field: messages
        for field, messages in errors.items()
        if not (
            (field.startswith("items.") and field.endswith(".sku"))
            and all(m.startswith("There is no product") for m in messages)
        )
        and not (
            (field.startswith("items.") and field.endswith(".quantity"))
            and all(m.startswith(f"At most {MAX_QUANTITY} ") and " in all, " in m for m in messages)
        )
        and not (
            field == "card_number"
            and messages == ["This card number is not valid (check the digits)."]
        )
    }


def use_the_catalog(body: dict) -> None:
    """Name products for sale, no more of one than an order may hold, and a card that passes
    its checksum, picked by the generated data."""
    skus = sorted(CATALOG)
    ordered: Counter[str] = Counter()
    items = []
    for item in body["items"]:
        item["sku"] = skus[len(item["sku"]) % len(skus)]
        item["quantity"] = min(item["quantity"], MAX_QUANTITY - ordered[item["sku"]])
        if item["quantity"]:
            ordered[item["sku"]] += item["quantity"]
            items.append(item)
    body["items"] = items
    body["card_number"] = VALID_CARDS[len(body["card_number"]) % len(VALID_CARDS)]


@pytest.fixture
def placed_order(catalog) -> Order:
    return services.order_place(
        email="ada@example.com",
        items=[services.OrderItem(sku="MUG-1", quantity=2)],
        shipping_address=dict(ADDRESS),
        card_number=VALID_CARDS[0],
    )


@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_answers_every_generated_request_as_documented(case, placed_order):
    placing = case.method == "POST" and case.path == "/api/orders/"
    reading = case.method == "GET" and case.path == "/api/orders/{order_id}/"
    listing = case.method == "GET" and case.path == "/api/orders/"
    if placing and is_positive(case) and case.headers and "Idempotency-Key" in case.headers:
        # A key of its own: the generated ones repeat, and a key used before with another
        # body is refused (tests/orders/test_idempotency.py).
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    # About half the valid requests are pointed, by a bit of their generated
    # data, at what exists: products for sale and a good card, an order placed.
    placeable = placing and is_positive(case) and case.body["items"][0]["quantity"] % 2 == 1
    if placeable:
        use_the_catalog(case.body)
    existing = reading and is_positive(case) and str(case.path_parameters["order_id"])[0] < "8"
    if existing:
        case.path_parameters["order_id"] = str(placed_order.id)
    before = rows()

    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])

    after = rows()
    if response.status_code >= 400:
        assert after == before, f"a rejected request wrote rows: {before} -> {after}"
        assert_readable_error(response)
    if placing and response.status_code == 202:
        order = Order.objects.get(pk=response.json()["id"])
        skus = {item["sku"] for item in case.body["items"]}
        saga = int(order.workflow == Workflow.ORCHESTRATION)
        assert after == {
            "Order": before["Order"] + 1,
            "OrderLine": before["OrderLine"] + len(skus),
            "OrderSaga": before["OrderSaga"] + saga,
            "OutboxMessage": before["OutboxMessage"] + 1 + saga,  # OrderPlaced (+ ChargePayment)
            "CardToken": before["CardToken"] + 1,
        }
        assert {line.sku for line in order.lines.all()} == skus
    elif response.status_code < 400:
        assert after == before, f"a request that places nothing wrote rows: {before} -> {after}"
    if is_positive(case):
        # A request that fits the document is accepted, or refused for a rule
        # no schema can state: a product not for sale, a card's checksum.
        if placeable:
            assert response.status_code == 202, response.content
        elif existing:
            assert response.status_code == 200, response.content
            assert response.json()["id"] == str(placed_order.id)
        elif placing and response.status_code == 422:
            assert not beyond_the_unstatable_rules(response.json()["errors"]), response.json()
        elif reading:
            assert response.status_code == 404, response.content
        elif listing:  # for staff only, and the test is not signed in
            assert response.status_code == 403, response.content
        else:
            assert response.status_code < 400, response.content

"""POST /api/orders/ under an Idempotency-Key: a retry is answered as the first request was.

No broker: OrderPlaced stays in the outbox of the test's transaction.
"""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from gateway.models import CardToken
from orders.models import Order, PlacementKey
from orders.tasks import purge_placement_keys
from tests.flow.conftest import order_body
from tests.orders.factories import CatalogItemFactory
from tests.support.envelopes import published
from tests.support.problems import problem_of

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def catalog(db):
    CatalogItemFactory(sku="MUG-1", name="Mug", available=5)
    return "MUG-1"


def post(client, body: dict, key: str | None = None):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(
        "/api/orders/", json.dumps(body), content_type="application/json", headers=headers
    )


def test_the_same_key_and_body_place_one_order_and_get_the_same_answer(client, catalog):
    body, key = order_body(items=[(catalog, 2)]), str(uuid.uuid4())

    first = post(client, body, key)
    again = post(client, body, key)

    assert (first.status_code, again.status_code) == (202, 202), again.content
    assert again.json() == first.json()
    assert again["Location"] == first["Location"] == first.json()["status_url"]
    assert (first["Idempotent-Replayed"], again["Idempotent-Replayed"]) == ("false", "true")
    # One order, one card token, one OrderPlaced
    assert [str(pk) for pk in Order.objects.values_list("pk", flat=True)] == [first.json()["id"]]
    assert CardToken.objects.count() == 1
    assert len(published("OrderPlaced")) == 1


def test_the_same_key_with_another_body_is_refused_saying_so(client, catalog):
    key = str(uuid.uuid4())
    placed = post(client, order_body(items=[(catalog, 1)]), key)

    response = post(client, order_body(items=[(catalog, 3)]), key)

    problem = problem_of(response, status=422, path="/api/orders/")
    assert problem["type"] == "/api/problems/idempotency-key-reused"
    assert "used for an order with a different body" in problem["detail"]
    assert problem["errors"] == {"Idempotency-Key": ["Already used with a different body."]}
    # Nothing of the first order shows, and nothing more is written
    assert placed.json()["id"] not in response.content.decode()
    assert (Order.objects.count(), CardToken.objects.count()) == (1, 1)
    assert len(published("OrderPlaced")) == 1


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("", "this one is empty"),
        ("k" * 256, "this one is 256 characters long"),
        ("my key", "this one is holding U+0020"),
        ("clé", "this one is holding U+00E9"),
    ],
    ids=["empty", "too long", "a space", "not ASCII"],
)
def test_a_malformed_key_is_refused_and_nothing_is_written(client, catalog, key, named):
    response = post(client, order_body(items=[(catalog, 1)]), key)

    problem = problem_of(response, status=422, path="/api/orders/")
    [message] = problem["errors"]["Idempotency-Key"]
    assert message.startswith("Send an Idempotency-Key of 1 to 255 visible ASCII characters")
    assert named in message
    assert not Order.objects.exists()
    assert not CardToken.objects.exists()
    assert not PlacementKey.objects.exists()


def test_an_order_refused_leaves_its_key_free_for_the_corrected_one(client, catalog):
    key = str(uuid.uuid4())
    refused = post(client, order_body(items=[(catalog, 50)]), key)
    assert problem_of(refused, status=422, path="/api/orders/")["type"] == (
        "/api/problems/order-rejected"
    )

    response = post(client, order_body(items=[(catalog, 1)]), key)

    assert response.status_code == 202, response.content
    assert Order.objects.get().lines.get().quantity == 1


def test_a_key_past_its_retention_is_purged_and_then_places_a_new_order(client, catalog, settings):
    settings.IDEMPOTENCY_KEY_RETENTION = 3600
    body, key = order_body(items=[(catalog, 1)]), "order-42"
    first = post(client, body, key)
    kept = PlacementKey.objects.get()
    # Given the key is kept within its retention, and then older than that
    PlacementKey.objects.filter(pk=kept.pk).update(created_at=timezone.now() - timedelta(hours=2))

    # When beat's purge runs
    purged = purge_placement_keys()

    # Then the key is forgotten, and the same request is a new order
    assert purged == 1
    assert not PlacementKey.objects.exists()
    again = post(client, body, key)
    assert again.status_code == 202
    assert again.json()["id"] != first.json()["id"]
    assert Order.objects.count() == 2


def test_a_key_within_its_retention_survives_the_purge(client, catalog):
    post(client, order_body(items=[(catalog, 1)]), "order-43")

    assert purge_placement_keys() == 0
    assert PlacementKey.objects.count() == 1


def test_without_a_key_each_post_is_an_order_of_its_own(client, catalog):
    body = order_body(items=[(catalog, 1)])

    first, second = post(client, body), post(client, body)

    assert first.json()["id"] != second.json()["id"]
    assert first["Location"] == first.json()["status_url"]
    assert "Idempotent-Replayed" not in first
    assert Order.objects.count() == 2

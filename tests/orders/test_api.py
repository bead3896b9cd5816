"""orders.api as a newcomer first meets it: the OpenAPI document's own example places an order.

No broker: the order stays in the test's transaction, as OrderPlaced is only
handed to the broker on commit.
"""

import io
import json

import pytest
from django.core.management import call_command

from messaging.context import handling
from messaging.messages import registry
from orders import handlers
from orders.models import CatalogItem, Order
from orders.schemas import AddressIn, ItemIn, OrderIn
from tests.support.envelopes import published

pytestmark = pytest.mark.django_db(databases="__all__")


def the_demo_catalog_reaches_orders() -> None:
    """Inventory's demo seed (the one `make run` makes), and orders' copy of it kept from
    the ProductUpdated events it published, each handled as a delivery would."""
    call_command("seed_catalog", stdout=io.StringIO())
    for row in published("ProductUpdated"):
        envelope = row.to_envelope()
        with handling(envelope):
            handlers.update_catalog(registry.read(envelope), envelope)


def json_body_example(document: dict, path: str, method: str) -> dict:
    """The example the document gives for an operation's JSON body, as Swagger UI picks it:
    the media type's own, or else the first of its schema's (following a $ref)."""
    content = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    if "example" in content:
        return content["example"]
    if content.get("examples"):
        return next(iter(content["examples"].values()))["value"]
    schema = content["schema"]
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema["examples"][0]


def test_the_documents_own_example_places_an_order_from_the_demo_catalog(client):
    # Given the demo catalog, as far as orders knows it
    the_demo_catalog_reaches_orders()
    assert CatalogItem.objects.count() > 1
    # And the body the API's document shows for placing an order
    document = client.get("/api/openapi.json").json()
    body = json_body_example(document, "/api/orders/", "post")

    # When it is sent as it stands, as "Try it out → Execute" sends it
    response = client.post("/api/orders/", json.dumps(body), content_type="application/json")

    # Then the order is placed
    assert response.status_code == 202, response.content
    accepted = response.json()
    order = Order.objects.get(pk=accepted["id"])
    lines = [(line.sku, line.quantity) for line in order.lines.all()]
    assert lines == [(item["sku"], item["quantity"]) for item in body["items"]]
    # And its status_url reads it back
    detail = client.get(accepted["status_url"])
    assert detail.status_code == 200, detail.content
    assert (detail.json()["id"], detail.json()["status"]) == (str(order.id), "placed")


@pytest.mark.parametrize("schema", [OrderIn, ItemIn, AddressIn], ids=lambda s: s.__name__)
def test_the_order_and_each_shape_in_it_show_an_example_the_api_accepts(client, schema):
    document = client.get("/api/openapi.json").json()

    examples = document["components"]["schemas"][schema.__name__]["examples"]

    assert examples
    for example in examples:
        schema.model_validate(example)

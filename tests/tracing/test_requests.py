"""A web request is the first span of an order's trace (opentelemetry-instrumentation-django).

No broker: the order stays in the test's transaction, so nothing is sent.
"""

from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import CatalogItem
from tests.flow.conftest import order_body
from tests.support.tracing import records

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.mark.parametrize(
    ("workflow", "recorded"),
    [("choreography", ["OrderPlaced"]), ("orchestration", ["OrderPlaced", "ChargePayment"])],
)
def test_placing_an_order_is_a_server_span_above_what_it_publishes(
    client, exported, workflow, recorded
):
    # Given a product orders knows of
    CatalogItem.objects.create(
        sku="MUG-1", name="Mug", price=Decimal("12.50"), currency="EUR", available=5,
        as_of=timezone.now(),
    )  # fmt: skip

    # When an order is placed through the API, with a caller's trace context
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = client.post(
        "/api/orders/",
        order_body(items=[("MUG-1", 1)], workflow=workflow),
        content_type="application/json",
        headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"},
    )
    assert response.status_code == 202, response.content

    # Then the request is a server span of the caller's trace, the route as its name
    found = records(exported)
    (request,) = [span for span in found if span.kind == "SERVER"]
    assert request.name == "POST api/orders/"
    assert (request.trace_id, request.parent_id) == (caller_trace, caller_span)
    # And each message it published was recorded in a span of its own, under it
    created = [span for span in found if span.name.startswith("create ")]
    assert [span.name for span in created] == [f"create {t}" for t in recorded]
    for span in created:
        assert span.parent_id == request.span_id
        assert span.attributes["messaging.message.conversation_id"] == response.json()["id"]


def test_probes_are_not_traced(client, exported):
    client.get("/healthz")
    assert records(exported) == []

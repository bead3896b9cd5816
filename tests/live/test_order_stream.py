"""An order's stream, read by a real SSE client from the real streaming server and publisher.

The order runs through the real app workers; the publisher reads the real
event log and publishes on the machine's Redis; uvicorn serves config.asgi.
"""

from __future__ import annotations

import os
import time
import uuid

import psutil
import pytest
from django.conf import settings
from django.core import signing

from live import tokens
from messaging.models import OutboxMessage
from orders.models import Order
from tests.flow.conftest import place_orders, wait_until_closed
from tests.support.sse import SseClient
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

FLOW = ["OrderPlaced", "PaymentProcessed", "InventoryReserved", "ShipmentCreated", "OrderCompleted"]


def steps_seen(client: SseClient) -> list[dict]:
    seen = []
    for event in client.events:
        if event.name == "timeline":
            seen.extend(event.data["steps"])
        elif event.name == "step":
            seen.append(event.data)
    return seen


def test_an_order_stream_sends_its_timeline_then_each_step_once_as_it_happens(live_stack, stock):
    sku = stock(on_hand=5)
    [order_id] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
    client = SseClient(live_stack.order_stream(order_id))
    try:
        assert client.status == 200
        assert client.headers["content-type"].startswith("text/event-stream")
        wait_until_closed(order_id)
        wait_for(lambda: "OrderCompleted" in [s["type"] for s in steps_seen(client)],
                 timeout=10, what="OrderCompleted on the stream")  # fmt: skip
    finally:
        client.close()

    assert client.events[0].name == "timeline"
    seen = steps_seen(client)
    ids = [step["message_id"] for step in seen]
    assert len(ids) == len(set(ids)), "a step was sent twice"
    assert {step["order_id"] for step in seen} == {str(order_id)}
    for expected in FLOW:
        assert expected in [step["type"] for step in seen]
    # Every step pushed carries its message id as the SSE id (Last-Event-ID), and its words.
    for event in client.named("step"):
        assert event.id == event.data["message_id"]
    shipped = next(step for step in seen if step["type"] == "ShipmentCreated")
    order = Order.objects.get(pk=order_id)
    assert shipped["title"] == f"Packed and handed to {order.carrier}"
    assert shipped["facts"]["tracking_number"] == order.tracking_number


def test_a_stream_opened_again_catches_up_with_what_was_published_meanwhile(live_stack, stock):
    sku = stock(on_hand=5)
    [order_id] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
    first = SseClient(live_stack.order_stream(order_id))
    first.close()  # the page went away
    wait_until_closed(order_id)

    again = SseClient(live_stack.order_stream(order_id))
    try:
        wait_for(lambda: again.named("timeline"), timeout=10, what="the timeline")
    finally:
        again.close()
    caught_up = [step["type"] for step in again.named("timeline")[0].data["steps"]]
    assert caught_up[0] == "OrderPlaced"
    for expected in FLOW:
        assert expected in caught_up


def database_connections(process: psutil.Process) -> int:
    port = int(settings.DATABASES["default"]["PORT"] or 5432)
    return sum(1 for c in process.net_connections("tcp") if c.raddr and c.raddr.port == port)


def test_open_streams_share_a_few_database_connections_and_keep_none_once_closed(live_stack, stock):
    # given an order, and as many threads as asyncio's shared pool may have
    sku = stock(on_hand=5)
    [order_id] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
    server = psutil.Process(live_stack.server.process.pid)
    pool = min(32, (os.cpu_count() or 1) + 4)

    # when 40 pages hold its stream open, then go away
    clients = [SseClient(live_stack.order_stream(order_id)) for _ in range(40)]
    try:
        wait_for(lambda: all(c.named("timeline") for c in clients), timeout=30,
                 what="every stream's timeline")  # fmt: skip
        held_open = database_connections(server)
        threads = server.num_threads()
    finally:
        for client in clients:
            client.close()

    # then the server held a connection per thread of the pool at most, not one per stream,
    # and no thread of its own for each stream either
    assert held_open <= pool
    assert threads <= pool + 8, f"{threads} threads for 40 streams"
    wait_for(lambda: all(c.ended.is_set() for c in clients), timeout=10, what="streams closed")
    time.sleep(1)
    assert database_connections(server) <= pool, "a closed stream left its connection open"


def test_no_stream_carries_another_orders_steps(live_stack, stock):
    sku = stock(on_hand=10)
    watched, other = place_orders(
        sku, workflows=["choreography", "choreography"], email="ada@example.com"
    )
    client = SseClient(live_stack.order_stream(watched))
    try:
        wait_until_closed(watched)
        wait_until_closed(other)
        wait_for(lambda: "OrderCompleted" in [s["type"] for s in steps_seen(client)],
                 timeout=10, what="OrderCompleted on the stream")  # fmt: skip
        time.sleep(0.5)  # anything of the other order's would have come by now
    finally:
        client.close()
    other_ids = {str(message_id) for message_id in _message_ids_of(other)}
    seen = steps_seen(client)
    assert other_ids and not other_ids & {step["message_id"] for step in seen}
    assert all(step["order_id"] == str(watched) for step in seen)


def _message_ids_of(order_id) -> list:
    return list(
        OutboxMessage.objects.filter(correlation_id=str(order_id)).values_list(
            "message_id", flat=True
        )
    )


@pytest.mark.parametrize(
    "path",
    [
        f"/live/orders/{uuid.uuid4()}/stream",  # an order that does not exist
        "/live/orders/not-an-order/stream",
        "/live/orders/../../admin/stream",
        "/live/orders/%2A/stream",  # a pattern's wildcard, were ids used as channel patterns
    ],
)
def test_an_unknown_or_malformed_order_id_is_a_404_at_once(live_stack, path):
    started = time.monotonic()
    client = SseClient(live_stack.url + path, timeout=5)
    assert client.status == 404
    assert time.monotonic() - started < 3, "the 404 must not wait on anything"


def test_only_the_streams_are_served_by_the_streaming_server(live_stack):
    for path in ("/", "/admin/", "/api/orders/"):
        client = SseClient(live_stack.url + path, timeout=5)
        assert client.status == 404, path


def test_the_staff_stream_needs_a_valid_ticket_of_active_staff(live_stack, django_user_model):
    customer = django_user_model.objects.create_user("customer", password="x")
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    forged = signing.dumps({"user": staff.pk}, key="not-our-secret", salt=tokens.SALT)
    for ticket in ("", "nonsense", forged, tokens.staff_ticket(customer)):
        client = SseClient(f"{live_stack.url}/live/staff/stream?ticket={ticket}", timeout=5)
        assert client.status == 403, ticket
        assert "staff" in client.body

    client = SseClient(f"{live_stack.url}/live/staff/stream?ticket={tokens.staff_ticket(staff)}")
    try:
        assert client.status == 200
    finally:
        client.close()
    staff.is_staff = False
    staff.save()
    client = SseClient(f"{live_stack.url}/live/staff/stream?ticket={tokens.staff_ticket(staff)}")
    assert client.status == 403, "a ticket is worth no more than its holder's staff status"

"""Logs from real workers: with LOG_FORMAT=json every line is JSON, and each line of a
delivery names its correlation id, message id, order and handler; by default, text."""

import contextlib
import json

import pytest

from messaging.models import InboxRecord, OutboxMessage
from tests.flow.conftest import order_body, wait_until_closed
from tests.support.waiting import wait_for
from tests.support.workers import APP_QUEUES, WorkerProcess, consumer_paused

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

DELIVERY_FIELDS = ("correlation_id", "message_id", "order_id", "handler")


@pytest.fixture
def json_worker(app_workers):
    """One worker for every app queue with LOG_FORMAT=json; the regular ones held off meanwhile."""
    env = {**app_workers["orders"].env, "LOG_FORMAT": "json"}
    with contextlib.ExitStack() as paused:
        for queue in APP_QUEUES:
            paused.enter_context(consumer_paused(app_workers[queue], queue))
        worker = WorkerProcess("json-logs", APP_QUEUES, env, concurrency=2)
        try:
            worker.wait_ready()
            yield worker
        finally:
            worker.stop()


def place(client, sku: str) -> str:
    response = client.post(
        "/api/orders/", order_body(items=[(sku, 1)]), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def deliveries_of(order_id: str) -> set[tuple[str, str]]:
    """(message id, handler) of every delivery of the order's messages that took effect."""
    message_ids = OutboxMessage.objects.filter(correlation_id=order_id).values_list(
        "message_id", flat=True
    )
    return {
        (str(message_id), handler)
        for message_id, handler in InboxRecord.objects.filter(
            message_id__in=list(message_ids)
        ).values_list("message_id", "handler")
    }


def succeeded(records: list[dict], handler: str, message_id: str) -> bool:
    return any(
        r.get("handler") == handler
        and r.get("message_id") == message_id
        and r["logger"] == "celery.app.trace"
        and "succeeded" in r["message"]
        for r in records
    )


def test_with_json_logs_every_line_of_a_delivery_names_its_message_order_and_handler(
    client, stock, json_worker
):
    # given a worker for every app queue writing JSON logs
    sku = stock(on_hand=5)

    # when an order goes all the way through it
    order_id = place(client, sku)
    assert wait_until_closed(order_id).status == "completed"
    deliveries = deliveries_of(order_id)
    assert {handler for _, handler in deliveries} >= {
        "payments.charge_for_order",
        "inventory.reserve_stock",
        "shipping.ship_reserved_order",
        "orders.complete_shipped",
    }
    wait_for(
        lambda: all(
            succeeded([json.loads(line) for line in list(json_worker.lines)], handler, message)
            for message, handler in deliveries
        ),
        what="Celery's line for each delivery",
    )

    # then every line it wrote is a JSON object (its start-up banner and warnings included) ...
    records = [json.loads(line) for line in list(json_worker.lines)]
    assert all({"time", "level", "logger", "process", "message"} <= r.keys() for r in records)
    # ... and each line of each of the order's deliveries, ours, the handler's and Celery's,
    # names the order, its conversation, the message and the handler
    delivered = [r for r in records if r.get("correlation_id") == order_id]
    for message_id, handler in deliveries:
        lines = [r for r in delivered if r.get("message_id") == message_id]
        lines = [r for r in lines if r.get("handler") == handler]
        assert lines, f"no line for {handler} of {message_id}"
        for line in lines:
            assert {name: line.get(name) for name in DELIVERY_FIELDS} == {
                "correlation_id": order_id,
                "message_id": message_id,
                "order_id": order_id,
                "handler": handler,
            }
            assert line["process"].startswith("ForkPoolWorker")
    for r in delivered:
        assert all(r.get(name) for name in DELIVERY_FIELDS), r
    # a handler's own line is one of them (notifications says which email it sent)
    assert any(
        r["logger"] == "notifications.services" and r["handler"].startswith("notifications.")
        for r in delivered
    )


def test_by_default_workers_write_readable_text(client, stock, app_workers):
    # given the regular workers, started without LOG_FORMAT
    sku = stock(on_hand=5)

    # when an order goes through them
    order_id = place(client, sku)
    assert wait_until_closed(order_id).status == "completed"
    worker = app_workers["shipping"]
    wait_for(
        lambda: any(
            "shipping.ship_reserved_order[" in line and "succeeded" in line for line in worker.lines
        ),
        what="the shipping worker's line for the order's shipment",
    )

    # then their lines are text, as Celery writes them
    for line in list(worker.lines):
        assert not line.startswith("{"), line
    assert any(line.startswith("[") and " INFO/" in line for line in worker.lines)

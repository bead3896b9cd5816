"""messaging.logs: the fields of a delivery or a request on each line, written as JSON.

Real workers writing JSON lines are in tests/flow/test_json_logs.py.
"""

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from uuid import uuid4

import pytest

from messaging import logs
from messaging.context import log_fields
from orders.models import Order
from tests.flow.conftest import order_body
from tests.orders.factories import CatalogItemFactory


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger also writes into a buffer, as LOG_FORMAT=json makes every process do."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def wire(**payload) -> dict:
    return {
        "message_id": str(uuid4()),
        "kind": "event",
        "type": "ProbePinged",
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "correlation_id": "conversation-1",
        "payload": payload,
    }


def test_a_line_logged_during_a_delivery_names_its_message_order_handler_and_task(json_lines):
    # given a delivery of an envelope whose payload names an order, as Celery starts it
    envelope = wire(order_id="3f1c5a52-0000-4000-8000-000000000001", probe_id="p")
    task = SimpleNamespace(name="probe.record_ping")
    logs.delivery_started(task_id="task-1", task=task, kwargs={"envelope": envelope})
    try:
        # when the handler logs, and so does Celery after it returned
        logging.getLogger("tests.probe.handlers").info("pinged")
        logging.getLogger("celery.app.trace").info("Task succeeded", extra={"data": {"id": 1}})
    finally:
        logs.delivery_finished(task_id="task-1", task=task)
    logging.getLogger("tests").info("after the delivery")

    # then both lines of the delivery carry its fields, and the one after it none
    handler_line, celery_line, after = records(json_lines)
    for line in (handler_line, celery_line):
        assert line["correlation_id"] == "conversation-1"
        assert line["message_id"] == envelope["message_id"]
        assert line["order_id"] == "3f1c5a52-0000-4000-8000-000000000001"
        assert line["handler"] == "probe.record_ping"
        assert line["task_id"] == "task-1"
    assert handler_line["message"] == "pinged"
    assert handler_line["logger"] == "tests.probe.handlers"
    assert handler_line["level"] == "INFO"
    assert {"time", "process"} <= handler_line.keys()
    assert celery_line["data"] == {"id": 1}
    assert not {"correlation_id", "message_id", "order_id", "handler"} & after.keys()
    assert log_fields() == {}


def test_a_message_that_is_no_envelope_still_names_its_handler_and_task(json_lines):
    task = SimpleNamespace(name="probe.record_ping")
    logs.delivery_started(task_id="task-2", task=task, kwargs={"envelope": "not an envelope"})
    try:
        logging.getLogger("messaging.delivery").error("Dead-lettered a message")
    finally:
        logs.delivery_finished(task_id="task-2", task=task)

    (line,) = records(json_lines)
    assert line["handler"] == "probe.record_ping"
    assert line["task_id"] == "task-2"
    assert "message_id" not in line


def test_a_task_that_is_no_handler_opens_no_fields(json_lines):
    task = SimpleNamespace(name="messaging.relay_outbox")
    logs.delivery_started(task_id="task-3", task=task, kwargs={})
    logging.getLogger("messaging.relay").info("relayed")
    logs.delivery_finished(task_id="task-3", task=task)

    (line,) = records(json_lines)
    assert "handler" not in line


def test_an_exception_is_one_line_with_its_traceback(json_lines):
    try:
        raise ValueError("card declined")
    except ValueError:
        logging.getLogger("tests").exception("Charge failed")

    (line,) = records(json_lines)
    assert line["message"] == "Charge failed"
    assert "ValueError: card declined" in line["exc_info"]


@pytest.mark.django_db(databases="__all__")
def test_the_lines_of_a_request_that_placed_an_order_name_it(client, json_lines):
    # given a product in orders' catalog
    item = CatalogItemFactory(available=5)

    # when an order is placed through the API (its event stays in the outbox: no broker here)
    response = client.post(
        "/api/orders/",
        order_body(items=[(item.sku, 1)]),
        content_type="application/json",
    )

    # then the request's line about it says which order and conversation it is
    assert response.status_code == 202, response.content
    order = Order.objects.get()
    placed = [line for line in records(json_lines) if line["message"].startswith("Placed order")]
    assert len(placed) == 1
    assert placed[0]["order_id"] == str(order.id)
    assert placed[0]["correlation_id"] == str(order.id)
    assert log_fields() == {}

"""Poison on every app queue: each message dead-lettered with its reason, healthy orders go on."""

import pickle
import uuid

import pytest
from django.conf import settings
from django.utils import timezone

from messaging.models import DeadLetter
from tests.flow.conftest import order_body, wait_until_closed
from tests.messaging.test_dead_letters import send_raw, task_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

# One real handler per app queue, to address the poison to.
HANDLERS = {
    "orders": "orders.mark_paid",
    "payments": "payments.charge_for_order",
    "inventory": "inventory.reserve_stock",
    "shipping": "shipping.ship_reserved_order",
    "notifications": "notifications.confirm_order",
}


def envelope(message_type: str, version: int, payload: dict) -> dict:
    return {
        "message_id": str(uuid.uuid4()),
        "kind": "event",
        "type": message_type,
        "version": version,
        "occurred_at": timezone.now().isoformat(),
        "correlation_id": "poison",
        "payload": payload,
    }


def poison_for(task: str) -> dict[str, tuple[dict, str]]:
    """Each kind of poison, with the dead-letter reason it must get."""
    json_type = "application/json"
    return {
        "not json": (dict(body=b"{not json", content_type=json_type, task=task), "undecodable"),
        "pickle": (
            dict(
                body=pickle.dumps(((), {}, {})),
                content_type="application/x-python-serialize",
                task=task,
            ),
            "rejected_content",
        ),
        "unknown task": (
            dict(body=task_body(envelope("X", 1, {})), content_type=json_type, task="nope.nope"),
            "unknown_task",
        ),
        "no task name": (dict(body=b"{}", content_type=json_type, task=None), "unknown_format"),
        "not a task tuple": (
            dict(body=b'{"a": 1}', content_type=json_type, task=task),
            "malformed",
        ),
        "unknown type": (
            dict(body=task_body(envelope("Nope", 1, {})), content_type=json_type, task=task),
            "unknown_message",
        ),
        "unknown version": (
            dict(
                body=task_body(envelope("OrderPlaced", 99, {})), content_type=json_type, task=task
            ),
            "unknown_message",
        ),
        "oversized": (
            dict(
                body=task_body(
                    envelope("OrderPlaced", 1, {"note": "x" * settings.MESSAGING_MAX_MESSAGE_BYTES})
                ),
                content_type=json_type,
                task=task,
            ),
            "oversized",
        ),
        "invalid payload": (
            dict(
                body=task_body(envelope("PaymentProcessed", 1, {"order_id": "not a uuid"})),
                content_type=json_type,
                task=task,
            ),
            "invalid_payload",
        ),
    }


def test_poison_on_every_queue_is_dead_lettered_and_healthy_orders_complete(
    client, stock, app_workers
):
    sku = stock(on_hand=5)
    expected: list[tuple[str, str]] = []
    for queue, task in HANDLERS.items():
        for message, reason in poison_for(task).values():
            send_raw(queue=queue, **message)
            expected.append((queue, reason))

    response = client.post(
        "/api/orders/", order_body(items=[(sku, 1)]), content_type="application/json"
    )
    order = wait_until_closed(response.json()["id"])
    assert order.status == "completed"

    wait_for(
        lambda: DeadLetter.objects.count() >= len(expected),
        what=f"{len(expected)} dead letters",
    )
    found = sorted(DeadLetter.objects.values_list("queue", "reason"))
    assert found == sorted(expected)
    assert all(letter.error for letter in DeadLetter.objects.all())

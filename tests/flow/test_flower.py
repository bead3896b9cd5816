"""Flower, a real client we did not write, watches the app workers: every one online, and the
tasks of an order as they run. (With a silent broker: tests/flow/test_broker_faults.py.)"""

import pytest

from config.celery import app
from messaging.models import InboxRecord, OutboxMessage
from tests.flow.conftest import order_body, wait_until_closed
from tests.support.flower import FlowerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

TASK_EVENTS_ON = "Events of group {task} enabled by remote."


def task_events_switches(worker) -> int:
    return sum(TASK_EVENTS_ON in line for line in list(worker.lines))


@pytest.fixture
def flower(app_workers):
    """`celery -A config flower` against the app workers, once it turned their task events on."""
    before = {name: task_events_switches(worker) for name, worker in app_workers.items()}
    process = FlowerProcess(app_workers["orders"].env)
    try:
        process.wait_ready()
        # Flower's enable_events reaches every worker within its 5 s period; each logs it.
        wait_for(
            lambda: all(task_events_switches(w) > before[n] for n, w in app_workers.items()),
            what="Flower to turn the workers' task events on",
        )
        yield process
    finally:
        process.stop()
        # Flower turned the workers' task events on; the next tests' workers need none.
        with app.connection_for_write() as connection:
            app.control.disable_events(connection=connection)


def place(client, sku: str) -> str:
    response = client.post(
        "/api/orders/", order_body(items=[(sku, 1)]), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def handled_by(order_ids: list[str]) -> dict[str, set[str]]:
    """Each of the orders' messages that was handled, and by which handlers."""
    message_ids = OutboxMessage.objects.filter(correlation_id__in=order_ids).values_list(
        "message_id", flat=True
    )
    handled: dict[str, set[str]] = {}
    for message_id, handler in InboxRecord.objects.filter(
        message_id__in=list(message_ids)
    ).values_list("message_id", "handler"):
        handled.setdefault(str(message_id), set()).add(handler)
    return handled


def tasks_by_message(flower: FlowerProcess) -> dict[str, dict]:
    """Flower's tasks that ran a delivery, by the message id it shows in their keywords."""
    found = {}
    for task in flower.tasks().values():
        kwargs = task.get("kwargs") or ""
        if "'envelope':" in kwargs:
            found[kwargs.rstrip("}").split()[-1]] = task
    return found


def flower_saw_run(flower: FlowerProcess, handled: dict[str, set[str]], hostnames) -> bool:
    """Every handled message is a task Flower saw received, started and succeeded on a worker
    of ours; one with a single handler, under that handler's name."""
    tasks = tasks_by_message(flower)
    for message_id, handlers in handled.items():
        task = tasks.get(message_id)
        if task is None or task["state"] != "SUCCESS" or task["worker"] not in hostnames:
            return False
        if not (task["received"] and task["started"] and task["succeeded"]):
            return False
        # The copies of an event published once for several queues share one task id:
        # Flower shows it once, under the handler of the last worker that reported on it.
        if len(handlers) == 1 and task["name"] not in handlers:
            return False
    return True


def test_flower_shows_every_worker_online_and_the_tasks_of_an_order_as_they_run(
    client, stock, app_workers, flower
):
    # given Flower started against the app workers, one per app queue
    hostnames = {worker.hostname for worker in app_workers.values()}

    # then it sees every one of them online, from their heartbeats, and reaches each
    wait_for(
        lambda: {name for name, online in flower.workers_online().items() if online} >= hostnames,
        what=f"Flower to show {sorted(hostnames)} online",
    )
    assert set(flower.get("/api/workers", refresh="true")) >= hostnames

    # when an order goes through them
    sku = stock(on_hand=5)
    order_id = place(client, sku)
    assert wait_until_closed(order_id).status == "completed"

    # then each delivery of its messages is a task Flower saw run, on the worker of its queue
    handled = handled_by([order_id])
    assert {"payments.charge_for_order", "shipping.ship_reserved_order"} <= set().union(
        *handled.values()
    )
    wait_for(
        lambda: flower_saw_run(flower, handled, hostnames),
        what="Flower to see every delivery of the order run",
    )
    tasks = tasks_by_message(flower)
    queue_of = {worker.hostname: queue for queue, worker in app_workers.items()}
    for message_id, handlers in handled.items():
        if len(handlers) == 1:
            (handler,) = handlers
            assert queue_of[tasks[message_id]["worker"]] == handler.split(".")[0]

"""The broker goes away under load: orders are still taken, and every one completes once.

RabbitMQ is stopped (`rabbitmqctl stop_app`) while orders are placed, has
all its connections closed (`rabbitmqctl close_all_connections`), or goes
silent (its process stopped with SIGSTOP, or its connections frozen). The web
keeps answering (events wait in the outbox), workers reconnect by themselves,
and the relay sends what could not be sent.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest
from django.db.models import Count

from config.celery import app
from gateway.models import Charge
from messaging.models import OutboxMessage
from messaging.relay import outbox_relay
from orders.models import Order
from payments.models import Payment
from shipping.models import Shipment
from tests.flow.conftest import order_body, rabbitmqctl
from tests.flow.test_flower import TASK_EVENTS_ON, flower_saw_run, handled_by
from tests.flow.test_saga import consumer_paused
from tests.support.flower import FlowerProcess
from tests.support.prerequisites import require
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from tests.support.workers import APP_QUEUES, WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]


def place(client, sku: str, workflow: str) -> str:
    response = client.post(
        "/api/orders/",
        order_body(items=[(sku, 1)], workflow=workflow),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def all_complete_once(ids: list[str]) -> None:
    """Relay while waiting (workers would), then check every order completed, each effect once."""

    def done() -> bool:
        outbox_relay(grace_seconds=0)
        return Order.objects.filter(pk__in=ids, status="completed").count() == len(ids)

    wait_for(done, timeout=120, what="every order to complete")
    assert Payment.objects.filter(order_id__in=ids).count() == len(ids)
    assert Charge.objects.filter(idempotency_key__in=[f"order-{i}" for i in ids]).count() == len(
        ids
    )
    doubles = Shipment.objects.filter(order_id__in=ids).values("order_id").annotate(n=Count("id"))
    assert {row["n"] for row in doubles} == {1}
    assert doubles.count() == len(ids)


@pytest.mark.parametrize("workflow", ["choreography", "orchestration"])
def test_orders_taken_while_the_broker_is_stopped_complete_when_it_returns(
    client, stock, app_workers, broker_control, workflow
):
    sku = stock(on_hand=20)
    ids = [place(client, sku, workflow) for _ in range(3)]

    rabbitmqctl("stop_app")
    try:
        # The web keeps taking orders: their events wait in the outbox
        ids += [place(client, sku, workflow) for _ in range(4)]
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup", "--timeout", "120")

    all_complete_once(ids)


def test_orders_complete_once_when_every_broker_connection_is_closed(
    client, stock, app_workers, broker_control
):
    sku = stock(on_hand=20)
    ids = [place(client, sku, "choreography") for _ in range(5)]

    rabbitmqctl("close_all_connections", "fault injection by the test suite")
    ids += [place(client, sku, "choreography") for _ in range(5)]

    all_complete_once(ids)


HEARTBEAT = 2


@pytest.fixture
def silent_broker_worker(rabbitmq, app_workers):
    """One worker for every app queue that reaches RabbitMQ through a proxy, heartbeat 2 s.

    The regular workers are held off the queues meanwhile, so this one does all the work.
    """
    parts = urlsplit(rabbitmq)
    proxy = TcpProxy((parts.hostname, parts.port or 5672))
    proxy.start()
    proxied = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    env = {
        **app_workers["orders"].env,
        "CELERY_BROKER_URL": proxied.geturl(),
        "CELERY_BROKER_HEARTBEAT": str(HEARTBEAT),
    }
    with contextlib.ExitStack() as paused:
        for queue in APP_QUEUES:
            paused.enter_context(consumer_paused(app_workers[queue], queue))
        worker = WorkerProcess("silent-broker", APP_QUEUES, env, concurrency=2)
        try:
            worker.wait_ready()
            yield worker, proxy
        finally:
            proxy.thaw()
            worker.stop()
            proxy.stop()


def rabbitmq_pid() -> int | None:
    found = subprocess.run(
        [shutil.which("pgrep") or "pgrep", "-f", "beam.smp.*rabbit"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    pids = found.stdout.split()
    return int(pids[0]) if len(pids) == 1 else None


@contextlib.contextmanager
def silenced(how: str, proxies: list[TcpProxy]):
    """Make the broker silent: its connections stay open and nothing comes back."""
    if how == "frozen connections":
        for proxy in proxies:
            proxy.freeze()
        try:
            yield
        finally:
            for proxy in proxies:
                proxy.thaw()
        return
    pid = rabbitmq_pid()
    require(pid is not None, "a local RabbitMQ process to stop")
    os.kill(pid, signal.SIGSTOP)
    # Should this process die meanwhile, the broker still wakes up.
    safety = threading.Timer(120, os.kill, (pid, signal.SIGCONT))
    safety.start()
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        safety.cancel()


@pytest.fixture
def flower_watching(request, app_workers, silent_broker_worker):
    """Flower, on the broker itself (not through the proxy), with the worker's task events on;
    or, for the "events off" case, none."""
    if not request.param:
        yield None
        return
    worker, _ = silent_broker_worker
    flower = FlowerProcess(app_workers["orders"].env)
    try:
        flower.wait_ready()
        wait_for(
            lambda: flower.workers_online().get(worker.hostname) is True,
            what="Flower to see the proxied worker online",
        )
        wait_for(
            lambda: any(TASK_EVENTS_ON in line for line in worker.lines),
            what="Flower to turn the proxied worker's task events on",
        )
        yield flower
    finally:
        flower.stop()
        with app.connection_for_write() as connection:
            app.control.disable_events(connection=connection)


@pytest.mark.parametrize(
    "flower_watching", [False, True], indirect=True, ids=["events off", "Flower watching"]
)
@pytest.mark.parametrize("how", ["frozen connections", "SIGSTOP"])
def test_a_silent_broker_hangs_nobody_and_every_order_completes_once_it_answers(
    client, stock, broker_proxy, silent_broker_worker, flower_watching, how
):
    """The broker stops answering: its TCP connections stay open, nothing comes back.

    With Flower watching, the worker also sends its heartbeats and task events
    all along (messaging.worker_events), and Flower sees it again afterwards.
    """
    worker, worker_proxy = silent_broker_worker
    flower = flower_watching
    sku = stock(on_hand=20)
    ids = [place(client, sku, workflow) for workflow in ("choreography", "orchestration")]
    wait_for(
        lambda: Order.objects.filter(pk__in=ids, status="completed").count() == 2,
        what="the first orders to complete through the proxied worker",
    )

    waits = []
    with silenced(how, [broker_proxy, worker_proxy]):
        for workflow in ("choreography", "orchestration", "choreography"):
            started = time.monotonic()
            ids.append(place(client, sku, workflow))
            waits.append(time.monotonic() - started)
        # The web answered the first order after a bounded wait, and the next
        # ones at once (the dispatch pauses after a failure); their events
        # wait in the outbox.
        assert waits[0] < 20, waits
        assert max(waits[1:]) < 1, waits
        pending = OutboxMessage.objects.filter(correlation_id__in=ids[2:], dispatched_at=None)
        assert pending.filter(type="OrderPlaced").count() == 3
        # The worker notices the silence through missed heartbeats instead of hanging on.
        wait_for(
            lambda: any("Too many heartbeats missed" in line for line in worker.lines),
            timeout=HEARTBEAT * 10,
            what="the worker to notice the silent broker",
        )

    all_complete_once(ids)
    print(f"silent broker ({how}): the web waited {', '.join(f'{w:.1f}s' for w in waits)}")
    if flower is not None:
        # Flower sees the worker online again, and the deliveries of the orders
        # taken while the broker was silent as tasks it ran
        wait_for(
            lambda: flower.workers_online().get(worker.hostname) is True,
            timeout=120,
            what="Flower to see the proxied worker online again",
        )
        handled = handled_by(ids[2:])
        wait_for(
            lambda: flower_saw_run(flower, handled, {worker.hostname}),
            timeout=120,
            what="Flower to see the later orders' deliveries run on the proxied worker",
        )

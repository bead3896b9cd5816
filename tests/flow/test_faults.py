"""Processes killed mid-work (a worker mid-step, the web after commit): nothing lost or doubled."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection

from gateway.models import Charge
from messaging.models import OutboxMessage
from messaging.relay import outbox_relay
from orders.models import Order, SagaEntry
from payments.models import Payment
from tests.flow.conftest import order_body, place_orders, wait_until_closed
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.flow.test_saga import consumer_paused
from tests.support import faults
from tests.support.paths import ROOT
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.mark.parametrize("workflow", ["choreography", "orchestration"])
def test_killing_the_payments_worker_mid_charge_charges_once(client, stock, app_workers, workflow):
    sku = stock(on_hand=2, price="13.00")
    regular = app_workers["payments"]
    # A second payments worker whose gateway calls take long enough to be killed in one.
    slow = WorkerProcess(
        f"slow-payments-{workflow}",
        ["payments"],
        {**regular.env, "PAYMENT_GATEWAY_LATENCY": "30"},
        concurrency=1,
    )
    try:
        slow.wait_ready()
        with consumer_paused(regular, "payments"):
            response = client.post(
                "/api/orders/",
                order_body(items=[(sku, 1)], workflow=workflow),
                content_type="application/json",
            )
            order_id = response.json()["id"]
            wait_for(
                lambda: any(
                    "received" in line and "payments.charge" in line for line in slow.lines
                ),
                what="the slow worker to take the charge",
            )
            time.sleep(0.5)  # well inside its 30 s gateway call
            children = slow.pool_children()
            assert children, slow.log()
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            wait_for(
                lambda: any("WorkerLostError" in line or "signal 9" in line for line in slow.lines),
                what="the worker to notice its lost child",
            )
            slow.stop()
    finally:
        slow.stop()

    # The regular worker gets the redelivered charge and the order goes on
    order = wait_until_closed(order_id)
    assert order.status == "completed"
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert Charge.objects.filter(idempotency_key=f"order-{order_id}").count() == 1
    assert Charge.objects.get(idempotency_key=f"order-{order_id}").status == "succeeded"
    if workflow == "orchestration":
        sent = SagaEntry.objects.filter(saga_id=order_id, kind="sent", message_type="ChargePayment")
        assert sent.count() == 1  # redelivered by the broker, not resent by the saga
    assert Order.objects.get(pk=order_id).amount_charged == order.total


def test_a_database_connection_cut_mid_charge_writes_nothing_partial_and_retries(
    client, stock, app_workers
):
    sku = stock(on_hand=2, price="17.00")
    regular = app_workers["payments"]
    slow = WorkerProcess(
        "slow-payments-db",
        ["payments"],
        {**regular.env, "PAYMENT_GATEWAY_LATENCY": "3"},
        concurrency=1,
    )
    try:
        slow.wait_ready()
        with consumer_paused(regular, "payments"):
            response = client.post(
                "/api/orders/", order_body(items=[(sku, 1)]), content_type="application/json"
            )
            order_id = response.json()["id"]
            # The charge's transaction is open (its payment row written, not
            # committed) while the gateway takes its time: cut that connection.
            backend = wait_for(
                lambda: _open_transaction_writing("payments_payment"),
                what="the charging transaction",
            )
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
            # Then the delivery fails, is retried, and the order goes on
            order = wait_until_closed(order_id)
    finally:
        slow.stop()

    assert order.status == "completed"
    assert Payment.objects.filter(order_id=order_id).count() == 1
    charge = Charge.objects.get(idempotency_key=f"order-{order_id}")
    assert (charge.status, charge.amount) == ("succeeded", order.total)
    assert any("retrying" in line for line in slow.lines), slow.log()


def _open_transaction_writing(table: str) -> int | None:
    """The PostgreSQL backend of another session that wrote to this table and has not committed."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT l.pid FROM pg_locks l
            JOIN pg_class c ON c.oid = l.relation
            WHERE c.relname = %s AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()
            """,
            [table],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def test_killing_a_worker_main_process_with_prefetched_messages_loses_and_doubles_nothing(
    stock, app_workers
):
    sku = stock(on_hand=10, price="11.00")
    regular = app_workers["payments"]
    # One pool process busy in a slow charge, the others waiting in its prefetch buffer.
    doomed = WorkerProcess(
        "doomed-payments",
        ["payments"],
        {**regular.env, "PAYMENT_GATEWAY_LATENCY": "2"},
        concurrency=1,
    )
    try:
        doomed.wait_ready()
        with consumer_paused(regular, "payments"):
            ids = place_orders(
                sku, workflows=["choreography", "orchestration"] * 3, email="kill@example.com"
            )
            wait_for(
                lambda: (
                    sum(" received" in line and "payments." in line for line in doomed.lines) >= 3
                ),
                what="the doomed worker to take several charges",
            )
            # kill -9 of the main process only: its pool child is orphaned
            # and may still finish the charge it was in.
            os.kill(doomed.process.pid, signal.SIGKILL)
            doomed.process.wait(timeout=10)
        # The regular worker gets every unacknowledged message back
        wait_until_all_closed(ids)
    finally:
        doomed.stop()

    tally = assert_books_balance(ids, {sku: 10})
    assert tally.completed == len(ids)


def test_a_web_process_killed_between_commit_and_dispatch_loses_no_order(stock, app_workers):
    sku = stock(on_hand=3, price="12.00")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**app_workers["orders"].env, faults.DIE_BEFORE_DISPATCH_ENV: "1"}
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _listening(port), what="gunicorn to listen")
        body = order_body(items=[(sku, 1)], email="killed-web@example.com")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/orders/",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        # The web worker dies right after its commit: the customer gets no answer
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(request, timeout=30)  # noqa: S310 (our own http URL)
    finally:
        os.killpg(web.pid, signal.SIGKILL)
        web.wait()

    # but the order and its event were committed,
    order = Order.objects.get(email="killed-web@example.com")
    event = OutboxMessage.objects.get(correlation_id=str(order.pk), type="OrderPlaced")
    assert event.dispatched_at is None

    # and the relay (every worker runs it every few seconds) delivers it: the order completes once.
    def relayed_and_completed() -> bool:
        outbox_relay(grace_seconds=0)
        return Order.objects.filter(pk=order.pk, status="completed").exists()

    wait_for(relayed_and_completed, what="the relayed order to complete")
    assert_books_balance([order.pk], {sku: 3})


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False

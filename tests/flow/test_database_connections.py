"""How many PostgreSQL connections the workers and the web hold, counted in pg_stat_activity.

The README's "Database connections at scale" gives the count: one
persistent connection per pool process of a worker, a second one in the
pool processes that charge cards (the simulated gateway's alias), two per
web worker thread, none in a worker's main process. Here the workers run
with one pool process each and the web with one worker, so each of them has
certainly used its connections when the orders are done.
"""

from __future__ import annotations

import contextlib
import http.client
import json

import psutil
import pytest
from django.db import connection

from inventory import services as inventory
from orders.models import CatalogItem
from tests.flow.conftest import order_body
from tests.flow.invariants import wait_until_all_closed
from tests.support.broker import purge_queues
from tests.support.prerequisites import require
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.web import WebServer
from tests.support.workers import APP_QUEUES, worker_env, workers_running

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]


def connections_to_this_database() -> list[str]:
    """Who holds each client connection to the test database (this test's own left out)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        ports = {port for (port,) in cursor.fetchall()}
    holders = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            for held in process.net_connections(kind="tcp"):
                if held.laddr and held.laddr.port in ports:
                    holders.append(f"{process.pid} {' '.join(process.info['cmdline'])[-80:]}")
    return sorted(holders) or [str(port) for port in ports]


def place(web: WebServer, sku: str) -> str:
    client = http.client.HTTPConnection(*web.address, timeout=30)
    try:
        body = json.dumps(order_body(items=[(sku, 1)]))
        client.request("POST", "/api/orders/", body, {"Content-Type": "application/json"})
        response = client.getresponse()
        assert response.status == 202, response.read()
        return json.loads(response.read())["id"]
    finally:
        client.close()


def test_each_pool_process_and_web_worker_holds_one_connection_payments_two(
    rabbitmq, django_db_blocker
):
    require(connection.vendor == "postgresql", "PostgreSQL")
    purge_queues(APP_QUEUES)
    # The gateway's alias is a connection of its own to the same database (here too).
    connection.ensure_connection()
    before = connections_to_this_database()
    env = {**worker_env(rabbitmq, django_db_blocker), "MESSAGING_WORKER_RELAY": "1"}
    specs = {queue: (f"{queue}-conns-worker", [queue], 1) for queue in APP_QUEUES}
    with workers_running(specs, env) as workers:
        inventory.product_save(sku="CONN-1", name="Counted", price=10, on_hand=100)
        wait_for(lambda: CatalogItem.objects.filter(sku="CONN-1", available=100).exists())
        web = WebServer(env, workers=1).wait_listening()
        try:
            ids = [place(web, "CONN-1") for _ in range(5)]
            wait_until_all_closed(ids)
            wait_until_quiet(APP_QUEUES)
            held = [h for h in connections_to_this_database() if h not in before]
        finally:
            web.stop()

    # Five pool processes (one per app worker), the payments one with the gateway's alias
    # too, and the web's one worker with both aliases: no main process, no relay of its own.
    print(f"\n{len(workers)} workers (-c 1) and a web worker hold {len(held)} connections")
    assert len(held) == len(APP_QUEUES) + 1 + 2, "\n".join(held)

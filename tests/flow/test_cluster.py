"""A three-node RabbitMQ cluster loses a node while orders are placed through the web.

Each app's worker (``celery -A config worker -Q <app>``) and gunicorn are
given the three nodes in CELERY_BROKER_URL, ``;`` between them, and quorum
queues (MESSAGING_QUEUE_TYPE=quorum), whose leaders all sit on the first
node of a new cluster: every client connects there first and a quorum
queue's leader is put on the node of the connection that declares it
(``client-local``). The tests share one cluster, in turn. While a
steady load places orders, the leaders' node is killed (``kill -9``) and
restarted, or each node is restarted in turn, or a node is stopped for good.
Every time every order ends, each effect happened once, the web kept taking
orders (the longest pause is printed and bounded) and the workers connected
again by themselves.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from messaging.models import DeadLetter, OutboxMessage
from orders.models import CatalogItem, Order
from tests.flow.conftest import order_body
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.support.cluster import CLUSTER_VHOST, Cluster, Node
from tests.support.order_load import OrderLoad
from tests.support.paths import ROOT
from tests.support.waiting import wait_for
from tests.support.web import WebServer
from tests.support.workers import APP_QUEUES, WorkerProcess, worker_env, workers_running

# Room for the wait for every order (300 s) after the load, and for what a failure prints.
pytestmark = [
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.slow,
    pytest.mark.timeout(600),
]

STOCK = 100_000
# The web answers while the broker fails over (the outbox keeps what could not be
# sent); a publish waits at most MESSAGING_CONFIRM_TIMEOUT for its confirm.
MAX_PAUSE = 20.0
CONNECTED = "Connected to amqp://"


@dataclass
class ShopOnCluster:
    cluster: Cluster
    env: dict[str, str]
    workers: dict[str, WorkerProcess]
    web: WebServer

    def stock(self, on_hand: int) -> str:
        """A product, created by a process of its own on the cluster; once orders knows of it."""
        sku = f"C-{uuid.uuid4().hex[:8].upper()}"
        code = (
            "from decimal import Decimal; from inventory.services import product_save; "
            f"product_save(sku={sku!r}, name='Cluster {sku}', price=Decimal('10.00'), "
            f"on_hand={on_hand})"
        )
        subprocess.run(
            [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
            cwd=ROOT, env=self.env, check=True, timeout=120,
        )  # fmt: skip
        wait_for(
            lambda: CatalogItem.objects.filter(sku=sku, available=on_hand).exists(),
            timeout=60,
            what=f"{sku} in the storefront's catalog",
        )
        return sku

    def leaders_node(self) -> Node:
        """The node that holds the leaders of the most app queues (all quorum queues): all of
        them on a new cluster; after a failover they are spread."""
        queues = {q["name"]: q for q in self.cluster.queues(CLUSTER_VHOST)}
        assert {queues[name]["type"] for name in APP_QUEUES} == {"quorum"}, queues
        leaders = Counter(queues[name]["leader"] for name in APP_QUEUES)
        return self.cluster.node_named(leaders.most_common(1)[0][0])

    def connections_made(self) -> dict[str, int]:
        return {name: worker.log(10_000).count(CONNECTED) for name, worker in self.workers.items()}


@pytest.fixture(scope="module")
def shop_on_cluster(rabbit_cluster, django_db_setup, django_db_blocker) -> Iterator[ShopOnCluster]:
    """The workers and the web on the module's cluster, for its tests in turn: each test
    leaves every order ended, and the cluster running (the last one on two nodes)."""
    env = {
        **worker_env(rabbit_cluster.url(CLUSTER_VHOST), django_db_blocker),
        "MESSAGING_QUEUE_TYPE": "quorum",
        "MESSAGING_WORKER_RELAY": "1",
        # Production's patience (900 s) rather than the tests' 10 s: while a node
        # dies, the relay may need a few rounds to send what a dispatch held back.
        "MESSAGING_RETRY_LATER_WINDOW": "120",
    }
    specs = {queue: (f"{queue}-cluster", [queue], 1) for queue in APP_QUEUES}
    with workers_running(specs, env) as workers:
        web = WebServer(env).wait_listening()
        try:
            yield ShopOnCluster(rabbit_cluster, env, workers, web)
        finally:
            web.stop()


def wait_until_replicated(cluster: Cluster, running: int) -> None:
    """Every quorum queue has ``running`` members online again."""

    def replicated() -> bool:
        quorum = [q for q in cluster.queues(CLUSTER_VHOST) if q["type"] == "quorum"]
        return bool(quorum) and all(len(q["online"]) >= running for q in quorum)

    wait_for(replicated, timeout=120, what=f"quorum queues on {running} nodes again")


def under_load(shop: ShopOnCluster, disrupt: Callable[[], None], *, label: str) -> None:
    """Place orders before, during and after ``disrupt``; then check every order and the books."""
    sku = shop.stock(STOCK)
    with OrderLoad(shop.web.address, order_body(items=[(sku, 1)])) as load:
        time.sleep(8)
        disrupt()
        # Orders placed after the disruption need every app's worker back.
        time.sleep(12)
    ids = load.placed
    try:
        wait_until_all_closed(ids, timeout=300)
    except BaseException:
        # Where the open orders stand, for whoever reads the failure.
        stuck = Order.objects.filter(pk__in=ids).exclude(status__in=["completed", "cancelled"])
        letters = DeadLetter.objects.values_list("handler", "reason", "error")[:10]
        unsent = OutboxMessage.objects.filter(dispatched_at__isnull=True)
        print(f"\n{label}: open {Counter(stuck.values_list('status', flat=True))}; "
              f"dead letters {list(letters)}; outbox unsent "
              f"{Counter(unsent.values_list('type', flat=True))}")  # fmt: skip
        for queue in shop.cluster.queues(CLUSTER_VHOST, consumers=True):
            print(queue)
        for name, worker in shop.workers.items():
            print(f"--- worker {name}, its log's end ---\n{worker.log(60)}")
        raise
    tally = assert_books_balance(ids, {sku: STOCK})
    pause = load.longest_pause()
    cancelled = list(
        Order.objects.filter(pk__in=ids, status="cancelled").values_list(
            "cancel_reason_code", flat=True
        )
    )
    print(
        f"\n{label}: {tally}; {len(load.refused)} POSTs not taken; "
        f"longest pause without an order taken {pause:.1f} s"
    )
    assert not cancelled, f"orders cancelled: {cancelled}"
    assert pause < MAX_PAUSE
    # The same worker processes, each connected again by itself.
    assert all(worker.is_running for worker in shop.workers.values())


# A known failure of the broker on this machine, not of ours. Now and then (once in
# five kills in a row of the leaders' node) an order stays "paid": its reservation's
# retry waits in inventory.retry.200ms (messages 2, ready 0, unacknowledged 0) and
# never comes back. RabbitMQ 3.10.8's at-least-once dead-letter worker dropped the
# hand-over ("rabbit_fifo_dlx_worker received unhandled info ... dlx_delivery" in the
# node's log) while the target queue elected a leader after the kill, and did not
# send it again (rabbitmq-server#6521, after 3.10.8, tests that it does). Our cause of
# the same symptom, a payment overtaking its order's lines while the relay sent them
# (its quick retries used up in a second), is fixed: MESSAGING_RETRY_LATER_WINDOW.
@pytest.mark.xfail(
    reason="RabbitMQ 3.10.8 can strand an expired retry in its retry queue after a kill -9",
    strict=False,
)
def test_killing_the_node_of_the_queue_leaders_loses_no_order(shop_on_cluster):
    shop = shop_on_cluster
    leaders = shop.leaders_node()
    # The module's first test: every leader, and every connection, on the first node.
    assert leaders is shop.cluster.nodes[0]
    assert {q["leader"] for q in shop.cluster.queues(CLUSTER_VHOST) if q["name"] in APP_QUEUES} == {
        leaders.name
    }
    before = shop.connections_made()

    def kill_and_restart() -> None:
        leaders.kill()
        time.sleep(5)
        leaders.start()

    under_load(shop, kill_and_restart, label=f"kill -9 of {leaders.name}, then a restart")

    # Every worker had its connection on the killed node (the first of the list) and made a new one.
    after = shop.connections_made()
    assert all(after[name] > before[name] for name in before), (before, after)


def test_a_rolling_restart_of_every_node_loses_no_order(shop_on_cluster):
    shop = shop_on_cluster
    wait_until_replicated(shop.cluster, running=len(shop.cluster.nodes))
    before = shop.connections_made()

    def rolling_restart() -> None:
        for node in shop.cluster.nodes:
            node.ctl("stop_app", timeout=120)
            time.sleep(2)
            node.ctl("start_app", timeout=120)
            wait_until_replicated(shop.cluster, running=len(shop.cluster.nodes))

    under_load(shop, rolling_restart, label="rolling restart of the three nodes")

    after = shop.connections_made()
    assert all(after[name] > before[name] for name in before), (before, after)


# Last: the module's cluster has two nodes after it.
def test_the_cluster_goes_on_with_two_nodes_when_one_stops_for_good(shop_on_cluster):
    shop = shop_on_cluster
    leaders = shop.leaders_node()

    under_load(shop, leaders.stop, label=f"{leaders.name} stopped for good")

    assert shop.cluster.running_nodes() == {n.name for n in shop.cluster.nodes} - {leaders.name}

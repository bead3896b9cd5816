"""The cluster phase: our flow on a three-node RabbitMQ cluster with quorum queues ÷ one node.

One setup is the machine's own node with classic queues (the benchmark's
vhost), the other three nodes of the phase's own, clustered on this machine
(tests/support/cluster.py, the cluster the tests use), with quorum queues and
every process given the three nodes in CELERY_BROKER_URL. Each round starts
our workers on one setup, measures a saturation run and a paced run at half
of that saturation (its p50/p99), stops them, and does the same on the other;
the first setup is swapped round by round. On the one node, the round also
measures saturation with 1, 2 and 4 payments workers sharing the queue (on
two cores this shows what competing consumers cost, not a speed-up). On the
cluster, it places orders at a steady pace, ``kill -9``s the node holding
the queues' leaders, and times the first order completed after the death;
the node is restarted before the next round.

It needs root (the nodes run as the rabbitmq user) and the rabbitmq-server
package; without them it is skipped, and says why.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .. import procs
from ..cli import Options
from ..environment import SKUS, fresh
from ..fleet import Fleet
from ..report import fmt
from . import place_orders
from .flows import measure, wait_flow_done

SETUPS = ["single", "cluster"]
VHOST = "bench"
PAYMENTS_WORKERS = [1, 2, 4]
# The pace of the orders while a node dies, and how long before and after it.
DEATH_RATE = 20.0
DEATH_AFTER_S = 3.0


def run(options: Options, log_dir: Path, results: dict) -> None:
    from tests.support.cluster import Cluster, cluster_available

    available, why = cluster_available()
    if not available:
        results["cluster"] = {"skipped": why}
        print(f"  skipped: {why}", flush=True)
        return
    print("  starting three RabbitMQ nodes and clustering them", flush=True)
    cluster = Cluster().start()
    try:
        cluster.add_vhost(VHOST)
        outcome: dict = {s: [] for s in SETUPS}
        outcome |= {"payments_workers": {str(n): [] for n in PAYMENTS_WORKERS}, "node_death": []}
        for run in range(options.runs):
            setups = SETUPS if run % 2 == 0 else list(reversed(SETUPS))
            for setup in setups:
                print(f"  run {run + 1}/{options.runs}: {setup}", flush=True)
                folder = log_dir / f"cluster-{setup}-{run + 1}"
                with broker(cluster, setup):
                    setup_run(options, folder, setup, cluster, outcome, run)
        results["cluster"] = outcome
    finally:
        cluster.close()


@contextlib.contextmanager
def broker(cluster, setup: str) -> Iterator[None]:
    """This process's broker (the queues it watches) for the setup, as its workers are told."""
    saved = os.environ["CELERY_BROKER_URL"]
    if setup == "cluster":
        os.environ["CELERY_BROKER_URL"] = cluster.url(VHOST)
    try:
        yield
    finally:
        os.environ["CELERY_BROKER_URL"] = saved


def setup_env(cluster, setup: str) -> dict[str, str]:
    if setup == "single":
        return {"MESSAGING_QUEUE_TYPE": "classic"}
    return {"CELERY_BROKER_URL": cluster.url(VHOST), "MESSAGING_QUEUE_TYPE": "quorum"}


def setup_run(options: Options, folder: Path, setup: str, cluster, outcome: dict, run: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(options, folder, env=setup_env(cluster, setup))
    try:
        fleet.start(["ours"])
        measure(fleet, "ours", max(2, options.orders // 20), 0, None)
        saturation = measure(fleet, "ours", options.orders, 0, None)
        rate = (saturation.get("orders_per_s") or 10) / 2
        paced = measure(fleet, "ours", max(4, options.orders // 2), rate, None)
        figures = {
            "orders_per_s": saturation.get("orders_per_s"),
            "saturation_p50_ms": saturation.get("p50_ms"),
            "saturation_p99_ms": saturation.get("p99_ms"),
            "half_load_rate": rate,
            "p50_ms": paced.get("p50_ms"),
            "p99_ms": paced.get("p99_ms"),
            "complete": saturation["complete"] and paced["complete"],
        }
        outcome[setup].append(figures)
        print(
            f"    {fmt(figures['orders_per_s'])} orders/s; at {fmt(rate)} orders/s p50 "
            f"{fmt(figures['p50_ms'])} ms, p99 {fmt(figures['p99_ms'])} ms",
            flush=True,
        )
        if setup == "single":
            payments_runs(options, fleet, folder, outcome["payments_workers"], run)
        else:
            outcome["node_death"].append(node_death(options, fleet, cluster))
    finally:
        fleet.stop()


def payments_runs(options: Options, fleet: Fleet, folder: Path, outcome: dict, run: int) -> None:
    """Saturation with 1, 2 and 4 payments workers (upwards, then downwards the next round)."""
    counts = PAYMENTS_WORKERS if run % 2 == 0 else list(reversed(PAYMENTS_WORKERS))
    ours = fleet.groups["ours"]
    extra: list[procs.Managed] = []
    for count in counts:
        while len(extra) < count - 1:
            worker = procs.celery_worker(
                f"ours-payments-{len(extra) + 2}", ["payments"], fleet_env(fleet), folder,
                options.concurrency, fleet.loglevel,
            )  # fmt: skip
            worker.wait_for_log(procs.READY_MARKER)
            extra.append(worker)
            ours.append(worker)
        while len(extra) > count - 1:
            worker = extra.pop()
            ours.remove(worker)
            worker.stop()
        time.sleep(1)  # the new pool children finish importing
        result = measure(fleet, "ours", options.orders, 0, None)
        outcome[str(count)].append(result.get("orders_per_s"))
        figure = fmt(result.get("orders_per_s"))
        print(f"    {count} payments workers: {figure} orders/s", flush=True)
    for worker in extra:
        ours.remove(worker)
        worker.stop()


def fleet_env(fleet: Fleet) -> dict[str, str]:
    from ..environment import child_env

    return child_env(**fleet.env)


def node_death(options: Options, fleet: Fleet, cluster) -> dict:
    """Orders at a steady pace; the leaders' node killed; the first order completed after."""
    fresh()
    leader = leaders_node(cluster)
    # Three times as many after the death as before it; in a smoke run at least
    # as many after it as before, or no order would be placed after the death.
    before = DEATH_RATE * DEATH_AFTER_S
    orders = min(int(before * 4), max(int(before * 2), options.orders * 10))
    injected: dict = {}
    injector = threading.Thread(
        target=lambda: injected.update(place_orders("ours", orders, SKUS, DEATH_RATE, **fleet.env)),
        daemon=True,
    )
    injector.start()
    time.sleep(DEATH_AFTER_S)
    died = time.time()
    leader.kill()
    injector.join(timeout=600)
    times, complete = wait_flow_done(injected.get("sent", orders), timeout=180)
    # An order placed after the death needs the cluster working again: the
    # first of them to complete ends the outage (one already finishing as the
    # node died would not).
    again = sorted(t1 for t0, t1 in times if t0 > died)
    closed = sorted(t1 for _, t1 in times)
    gaps = [b - a for a, b in itertools.pairwise(closed) if b > died]
    figures = {
        "node": leader.name,
        "orders": injected.get("sent"),
        "completed": len(times),
        "complete": complete,
        "first_completed_after_s": again[0] - died if again else None,
        "longest_gap_s": max(gaps, default=None),
    }
    print(
        f"    kill -9 of {leader.name}: the first order placed after it completed "
        f"{fmt(figures['first_completed_after_s'], 2)} s after; {len(times)} of "
        f"{figures['orders']} completed",
        flush=True,
    )
    leader.start()
    return figures


def leaders_node(cluster):
    """The node that leads the most app queues (all of them, when declared through one node)."""
    from collections import Counter

    from django.conf import settings

    queues = cluster.queues(VHOST)
    leaders = Counter(q["leader"] for q in queues if q["name"] in settings.APP_QUEUES)
    return cluster.node_named(leaders.most_common(1)[0][0])

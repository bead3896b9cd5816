"""The bench app's Celery tasks: the bare Celery floor's (bench/naive.py makes the naive twins).

The floor is the order's message graph (bench/graph.py) made of no-op tasks:
each delivery only sends its children on their queues, and the delivery that
completes the order reports it on the ``bench_done`` queue.
"""

from __future__ import annotations

import time

from celery import shared_task

from . import graph
from .doneq import report_done


@shared_task(name="floor.hop", ignore_result=True)
def floor_hop(oid: str, t0: float, node: str) -> None:
    for child in graph.children(node):
        floor_hop.apply_async((oid, t0, child), queue=f"floor_{graph.queue_of(child)}")
    if node == graph.DONE:
        report_done(oid, t0, time.time())


def floor_start(oid: str, t0: float) -> None:
    """What the web request does in the floor: publish the first event's deliveries."""
    for child in graph.children(graph.START):
        floor_hop.apply_async((oid, t0, child), queue=f"floor_{graph.queue_of(child)}")

"""The ``bench_done`` queue: where the floors report each completed order to the harness."""

from __future__ import annotations

import json
import os
import threading

from kombu import Connection, Queue

DONE_QUEUE = "bench_done"
_local = threading.local()


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/bench")


def done_queue() -> Queue:
    return Queue(DONE_QUEUE, durable=False, auto_delete=False)


def report_done(oid: str, t0: float, t1: float) -> None:
    """Publish (without confirm: it is the harness's, not part of what is measured)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = Connection(broker_url())
        _local.producer = conn.Producer(serializer="json")
    _local.producer.publish(
        json.dumps({"oid": oid, "t0": t0, "t1": t1}),
        routing_key=DONE_QUEUE,
        exchange="",
        content_type="application/json",
        content_encoding="utf-8",
        declare=[done_queue()],
        retry=True,
    )

"""The transport floor: the order's message graph through raw kombu, with publisher confirms.

One process per app queue (``python -m bench.kombu_floor APP``), like one
worker per app: it consumes its queue (prefetch 4, acknowledged after its
children were published and confirmed, like acks_late) and publishes each
child delivery to its queue with RabbitMQ's confirm. No Celery, no Django,
no database (the harness hands it the graph, see bench/graph.py): what is
left is the broker round trips of the same hops.
"""

from __future__ import annotations

import signal
import sys
import time

from kombu import Connection, Consumer, Exchange, Producer, Queue

from . import graph
from .doneq import broker_url, report_done

PREFIX = "kfloor_"


def queue(app: str) -> Queue:
    name = f"{PREFIX}{app}"
    return Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)


def publisher(conn: Connection) -> Producer:
    return Producer(conn.channel(), serializer="json")


def publish(producer: Producer, oid: str, t0: float, node: str) -> None:
    target = queue(graph.queue_of(node))
    producer.publish(
        {"oid": oid, "t0": t0, "node": node},
        exchange=target.exchange,
        routing_key=target.routing_key,
        delivery_mode=2,
        declare=[target],
    )


def start(producer: Producer, oid: str, t0: float) -> None:
    """What the web request does in this floor: publish the first event's deliveries."""
    for child in graph.children(graph.START):
        publish(producer, oid, t0, child)


def connect() -> Connection:
    return Connection(broker_url(), transport_options={"confirm_publish": True})


def serve(app: str) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    # Publishing waits for confirms on a connection of its own: waiting on the
    # consuming connection would deliver the next message inside the wait.
    with Connection(broker_url()) as conn, connect() as publishing:
        producer = publisher(publishing)

        def on_message(body, message) -> None:
            node = body["node"]
            for child in graph.children(node):
                publish(producer, body["oid"], body["t0"], child)
            if node == graph.DONE:
                report_done(body["oid"], body["t0"], time.time())
            message.ack()

        channel = conn.channel()
        with Consumer(channel, [queue(app)], callbacks=[on_message], accept=["json"]) as consumer:
            consumer.qos(prefetch_count=4)
            print(f"kombu floor {app} ready.", flush=True)
            while not stopping:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    continue


if __name__ == "__main__":
    serve(sys.argv[1])

"""A backlog in the event log's stream, as the dispatch appends it, and the raw read of it.

The entries are the task messages our dispatch publishes (the envelope in
the body), for orders that are placed, paid and completed, so that every
processor has its share of work. The raw read is the floor: the same
entries consumed over AMQP and decoded, with no state kept.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal


def stream_refill(count: int) -> int:
    """An ``events`` stream holding ``count`` entries and nothing else; returns its last offset."""
    from django.utils import timezone

    from messaging.eventlog.rabbitmq import QUEUE
    from messaging.messages import Envelope
    from orders.events import Address, OrderCompleted, OrderPlaced, PlacedLine
    from payments.events import PaymentProcessed

    from .broker import broker_connection

    def body(message) -> str:
        message_id = uuid.uuid4()
        envelope = Envelope(
            message_id=message_id,
            kind="event",
            type=message.message_type,
            version=message.message_version,
            occurred_at=timezone.now(),
            correlation_id=str(message_id),
            payload=message.model_dump(mode="json"),
        )
        return json.dumps([[], {"envelope": envelope.to_wire()}, {}])

    stream_empty()
    with broker_connection() as conn:
        channel = conn.channel()
        producer = conn.Producer(channel)
        address = Address(
            name="B", line1="1 Bench St", city="Lyon", postal_code="69001", country="FR"
        )
        for i in range(-(-count // 3)):
            order_id = uuid.uuid4()
            messages = (
                OrderPlaced(
                    order_id=order_id, email=f"bench{i % 200}@example.com",
                    lines=[PlacedLine(sku=f"BENCH-{i % 20:02d}", name="Bench item", quantity=1,
                                      unit_price=Decimal("9.50"))],
                    total=Decimal("9.50"), currency="EUR", shipping_address=address,
                    card_token=f"tok_{i % 500}", card_last4="4242", card_fingerprint=f"fp{i % 500}",
                ),
                PaymentProcessed(order_id=order_id, payment_id=uuid.uuid4(),
                                 amount=Decimal("9.50"), currency="EUR"),
                OrderCompleted(order_id=order_id, tracking_number="BENCH"),
            )  # fmt: skip
            for message in messages[: count - 3 * i]:
                producer.publish(
                    body(message), exchange="", routing_key=QUEUE,
                    content_type="application/json", content_encoding="utf-8",
                )  # fmt: skip
    from messaging.eventlog import event_log

    head = event_log().head()
    assert head is not None, "the stream holds the entries just published"
    return head


def stream_empty() -> None:
    """The ``events`` stream deleted and declared again, empty."""
    from messaging.eventlog.rabbitmq import QUEUE, declaration

    from .broker import broker_connection

    with broker_connection() as conn:
        channel = conn.channel()
        channel.queue_delete(QUEUE)
        declaration()(channel).declare()


def stream_read_raw(head: int) -> dict:
    """Consume the stream from its first entry to ``head``, decoding each body: the floor."""
    from messaging.eventlog.rabbitmq import PREFETCH, QUEUE

    from .broker import broker_connection

    with broker_connection() as conn:
        raw = conn.connection
        channel = raw.channel()
        channel.basic_qos(0, PREFETCH, False)
        seen = {"count": 0, "last": -1}

        def on_message(message) -> None:
            json.loads(message.body)
            seen["count"] += 1
            seen["last"] = message.headers["x-stream-offset"]
            if seen["count"] % 500 == 0:
                channel.basic_ack(message.delivery_tag, multiple=True)

        started = time.perf_counter()
        channel.basic_consume(QUEUE, callback=on_message, arguments={"x-stream-offset": "first"})
        while seen["last"] < head:
            raw.drain_events(timeout=10)
        seconds = time.perf_counter() - started
    return {"entries": seen["count"], "seconds": seconds, "entries_per_s": seen["count"] / seconds}

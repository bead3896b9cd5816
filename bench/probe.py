"""A no-op handler of our messaging layer: the outbox drain and worker memory scenarios.

It goes through everything a real handler does (envelope and payload
validation, the inbox record in one transaction with the handler, the result
backend) and does nothing of its own.
"""

import uuid
from datetime import datetime

from messaging.consumers import handler
from messaging.messages import Envelope, Event


class BenchPinged(Event):
    seq: int
    note: str = ""


@handler(BenchPinged, queue="bench_probe")
def record_ping(event: BenchPinged, envelope: Envelope) -> None:
    """Nothing: what is measured is the backbone around it."""


def ping_envelope(message: BenchPinged, occurred_at: datetime) -> Envelope:
    """The envelope ``publish()`` would give this ping, the first of its conversation."""
    message_id = uuid.uuid4()
    return Envelope(
        message_id=message_id, kind=message.kind, type=message.message_type,
        version=message.message_version, occurred_at=occurred_at,
        correlation_id=str(message_id), causation_id=None, payload=message.model_dump(mode="json"),
    )  # fmt: skip

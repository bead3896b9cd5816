"""A no-op handler of our messaging layer: the outbox drain and worker memory scenarios.

It goes through everything a real handler does (envelope and payload
validation, the inbox record in one transaction with the handler, the result
backend) and does nothing of its own.
"""

from messaging.consumers import handler, subscribe
from messaging.messages import Envelope, Event


class BenchPinged(Event):
    seq: int
    note: str = ""


@handler(BenchPinged, queue="bench_probe")
def record_ping(event: BenchPinged, envelope: Envelope) -> None:
    """Nothing: what is measured is the backbone around it."""


subscribe(record_ping)

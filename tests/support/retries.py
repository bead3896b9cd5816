"""A delivery that fails and is retried for real: its retry goes to a queue of its own.

No worker consumes that queue, and it is deleted afterwards with its retry
queues, so the retry is published and confirmed as any other, and then goes
nowhere.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

from django.conf import settings
from kombu import Connection, Exchange, Queue

from messaging.delivery import delivery_run
from messaging.messages import Envelope
from messaging.queues import retry_delays, retry_queue
from messaging.subscriptions import Handler
from tests.probe.events import ProbePinged
from tests.support.envelopes import envelope_of
from tests.support.probes import new_probe_id


def always_fails(message, envelope) -> None:
    raise RuntimeError("this handler always fails")


@contextlib.contextmanager
def failing_handler(
    fails: Callable[[ProbePinged, Envelope], None] = always_fails,
) -> Iterator[Handler]:
    """A handler of ProbePinged that always fails (by ``fails``), on a throwaway queue (deleted
    afterwards)."""
    name = f"retries_{uuid.uuid4().hex[:8]}"
    handler = Handler(fails, (ProbePinged,), name, "probe.always_fails")
    # messaging.transport declares a handler's own declaration when it has one.
    handler.declaration = Queue(name, Exchange(name, type="direct"), routing_key=name)
    try:
        yield handler
    finally:
        retry_queues = [
            retry_queue(name, delay=delay, queue_type=settings.MESSAGING_QUEUE_TYPE)
            for delay in retry_delays(
                backoff=settings.MESSAGING_RETRY_BACKOFF,
                backoff_max=settings.MESSAGING_RETRY_BACKOFF_MAX,
            )
        ]
        with Connection(settings.CELERY_BROKER_URL) as connection:
            channel = connection.default_channel
            for queue in [handler.declaration, *retry_queues]:
                queue(channel).delete()
                queue.exchange(channel).delete()


def deliver_once(handler: Handler) -> tuple[str, Envelope]:
    """A first delivery of a new ProbePinged to the handler: what became of it, and the envelope."""
    envelope = envelope_of(ProbePinged(probe_id=new_probe_id()))
    outcome = delivery_run(
        handler=handler, args=(), kwargs={"envelope": envelope.to_wire()}, retries=0
    )
    return outcome, envelope

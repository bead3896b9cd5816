"""Every queue of ours as RabbitMQ is to declare it: the app queues, their retry queues, and the
queue the broker dead-letters into.

A queue's arguments are part of it: a declaration with other arguments than
the broker holds fails (PRECONDITION_FAILED), so the web, the relay, every
worker and the benchmark take their declarations from here: the app queues
through the settings (CELERY_TASK_QUEUES), the retry queues and their tiers
through ``messaging.transport`` (from MESSAGING_RETRY_BACKOFF and _MAX).

MESSAGING_QUEUE_TYPE picks the kind. ``classic`` queues are declared as they
always were (no arguments), so a running deployment's queues stay valid.
``quorum`` queues are replicated across a cluster's nodes; an app queue then
also gives up on a message redelivered MESSAGING_DELIVERY_LIMIT times (a
message that kills its worker every time) and dead-letters it, at least once,
into ``dead_letters``, which the workers drain into DeadLetter records
(``messaging.worker``).

A retry waits in a retry queue of its app's, one per delay tier, whose
``x-message-ttl`` dead-letters it back to the app's queue when the delay is
over: no worker holds it meanwhile. One TTL per queue, because RabbitMQ
expires messages at the head of a queue only: in a queue of one delay they
expire in the order they came. Importing this module touches no Django setting.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

QUEUE_TYPES = ("quorum", "classic")
# Where a quorum app queue sends what the broker dead-letters (the delivery limit reached).
DEAD_LETTER_QUEUE = "dead_letters"


def queue_type_read(value: str) -> str:
    """MESSAGING_QUEUE_TYPE checked: one of QUEUE_TYPES."""
    if value not in QUEUE_TYPES:
        raise ImproperlyConfigured(
            f"MESSAGING_QUEUE_TYPE={value!r} is not a queue type: quorum (replicated, for "
            "production) or classic (one node, for development)"
        )
    return value


def _declared(name: str, arguments: dict[str, Any]) -> Queue:
    return Queue(
        name,
        Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments=arguments or None,
    )


def _quorum(*, dead_letter_to: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {"x-queue-type": "quorum"}
    if dead_letter_to is not None:
        # At-least-once: the broker keeps a message until the queue it
        # dead-letters into has confirmed it (RabbitMQ 3.10+), which needs a
        # queue that refuses publishes when full rather than dropping its head.
        arguments |= {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead_letter_to,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    return arguments


def app_queue(name: str, *, queue_type: str, delivery_limit: int) -> Queue:
    """An app's queue, which the app's workers consume (``-Q name``)."""
    if queue_type == "classic":
        return _declared(name, {})
    return _declared(
        name,
        {**_quorum(dead_letter_to=DEAD_LETTER_QUEUE), "x-delivery-limit": delivery_limit},
    )


def dead_letter_queue(*, queue_type: str) -> Queue:
    """Where the broker dead-letters; no worker runs its messages, they become DeadLetter rows."""
    arguments = _quorum(dead_letter_to=None) if queue_type == "quorum" else {}
    return _declared(DEAD_LETTER_QUEUE, arguments)


def retry_queue_name(queue: str, delay: float) -> str:
    return f"{queue}.retry.{round(delay * 1000)}ms"


def retry_queue(queue: str, *, delay: float, queue_type: str) -> Queue:
    """The queue where a retry of ``queue`` waits ``delay`` seconds, then goes back to it."""
    if queue_type == "quorum":
        arguments = _quorum(dead_letter_to=queue)
    else:
        # Classic: dead-lettered at most once (lost if the app's queue were gone).
        arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}
    arguments["x-message-ttl"] = round(delay * 1000)
    return _declared(retry_queue_name(queue, delay), arguments)


def retry_delays(*, backoff: float, backoff_max: float) -> tuple[float, ...]:
    """The delay tiers: half the backoff times each power of two up to backoff_max, and half
    of backoff_max and backoff_max itself, so that every retry's window of jitter (between half
    and all of backoff * 2**n, capped) holds at least one."""
    delays = {round(backoff_max, 3), round(backoff_max / 2, 3)}
    delay = backoff / 2
    while delay < backoff_max:
        delays.add(round(delay, 3))
        delay *= 2
    return tuple(sorted(d for d in delays if d > 0))

"""One message for several queues: RabbitMQ copies it, each consumer names its own handler.

An event whose subscribers sit on several queues is published once, to the
first handler's queue through the default exchange (which routes by queue
name), with the other queues in its ``CC`` header: RabbitMQ copies it into
each of them (sender-selected distribution). One publish and one confirm,
however many apps subscribe.

Every copy carries the same headers. The worker's consumer
(``messaging.worker``) knows which queue a copy came from and turns it, before
Celery reads it, into a delivery to that queue's handler, as if it had been
published to that handler alone. Monitoring therefore sees each copy under a
task id of its own, derived from the published one, under which no task runs.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID, uuid5

# The task name of a message published once for several queues, until the
# consumer of each queue names its own handler.
FANNED_OUT_TASK = "messaging.fanned_out"
# The header that names, per queue, the handler of a fanned-out message.
FANNED_OUT_HANDLERS = "x-handlers"


class Subscriber(Protocol):
    # Read-only: a handler, or the event log's frozen LogSubscriber.
    @property
    def name(self) -> str: ...
    @property
    def queue(self) -> str: ...


def fanned_out(handlers: list[Subscriber]) -> tuple[str, dict]:
    """The task name and headers of one message for several handlers, each on its own queue."""
    return FANNED_OUT_TASK, {
        "CC": [handler.queue for handler in handlers[1:]],
        FANNED_OUT_HANDLERS: {handler.queue: handler.name for handler in handlers},
    }


def handlers_named(headers: dict) -> dict[str, str]:
    """Queue -> handler name, as a fanned-out message's headers give them."""
    named = headers.get(FANNED_OUT_HANDLERS)
    return {str(q): str(h) for q, h in named.items()} if isinstance(named, dict) else {}


def address_copy(headers: dict, delivery_info: dict, queue: str) -> str | None:
    """Make a fanned-out copy that arrived on ``queue`` a delivery to that queue's handler.

    Rewrites the message's headers and delivery info in place: its task is
    the handler, its id its own (the same each time this copy is delivered),
    and a retry goes back to this queue only. Returns the handler's name, or
    None when the message names none for this queue.
    """
    handler_name = handlers_named(headers).get(queue)
    if not handler_name:
        return None
    headers["task"] = handler_name
    try:
        headers["id"] = str(uuid5(UUID(str(headers.get("id"))), queue))
    except ValueError:
        headers["id"] = f"{headers.get('id')}.{queue}"
    # Neither may follow the copy into a retry, which would go to every queue again.
    headers.pop("CC", None)
    headers.pop(FANNED_OUT_HANDLERS, None)
    delivery_info["exchange"] = ""
    delivery_info["routing_key"] = queue
    return handler_name

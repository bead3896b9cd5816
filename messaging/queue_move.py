"""Move every message of our queues from one RabbitMQ vhost to another, none lost.

A queue's type cannot change in place, so classic queues become quorum ones
on a new vhost with the same queue names (README, "Moving from classic to
quorum queues"). Once every process publishes to and consumes from the new vhost,
``manage.py move_queues --from OLD_URL`` empties the old one into it: each
message is taken unacknowledged from the old queue, published to the queue
of the same name on the new vhost (declared as this process declares it),
and acknowledged on the old side only once the new side confirmed it. A
crash in between leaves the message in both, and the inbox makes its second
delivery a duplicate that takes no effect: moved at least once, handled once.

Retry queues go first, then the app queues, then ``dead_letters``, in passes
until one finds nothing: a retry that expires into an old app queue while its
retry queue is moved is picked up by the next pass.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from amqp import Message
from amqp.exceptions import NotFound
from celery import current_app
from django.conf import settings
from kombu import Connection, Queue

from . import queues
from .broker_urls import connect_once_to_each

# Messages published before one wait for their confirms and one ack of them all.
BATCH = 200
# Passes over every queue before giving up on an old side that keeps filling.
MAX_PASSES = 20


class MoveError(Exception):
    """The move stopped: what is left stays on the old vhost, and a new run goes on."""


@dataclass
class MoveResult:
    moved: Counter[str] = field(default_factory=Counter)
    missing: set[str] = field(default_factory=set)
    passes: int = 0

    def __str__(self) -> str:
        counts = ", ".join(f"{name} {n}" for name, n in sorted(self.moved.items()) if n)
        text = f"{sum(self.moved.values())} messages moved in {self.passes} passes"
        return text + (f" ({counts})" if counts else "")


def queues_to_move() -> list[Queue]:
    """Our queues as this process declares them: every retry queue, the app queues, dead_letters."""
    tiers = queues.retry_delays(
        backoff=settings.MESSAGING_RETRY_BACKOFF, backoff_max=settings.MESSAGING_RETRY_BACKOFF_MAX
    )
    queue_type = settings.MESSAGING_QUEUE_TYPE
    app_queues = [current_app.amqp.queues[name] for name in settings.MESSAGING_QUEUES]
    retry_queues = [
        queues.retry_queue(queue.name, delay=delay, queue_type=queue_type)
        for queue in app_queues
        for delay in tiers
    ]
    return [*retry_queues, *app_queues, queues.dead_letter_queue(queue_type=queue_type)]


def queues_move(*, source_url: str, target_url: str | None = None) -> MoveResult:
    """Move every message of our queues on ``source_url`` to the same queues on ``target_url``
    (this process's broker unless given), in passes until one moves nothing."""
    target_url = target_url or current_app.conf.broker_url
    if _vhost_of(source_url) == _vhost_of(target_url):
        raise MoveError(f"the source and the target are one vhost ({_vhost_of(source_url)})")
    result = MoveResult()
    with _connected(source_url) as source, _connected(target_url) as target:
        target_channel = target.channel()
        to_move = queues_to_move()
        while result.passes < MAX_PASSES:
            result.passes += 1
            moved = sum(_queue_move(source, target_channel, q, result) for q in to_move)
            if not moved:
                return result
    raise MoveError(f"the old vhost still had messages after {MAX_PASSES} passes: {result}")


def _queue_move(source: Connection, target_channel, queue: Queue, result: MoveResult) -> int:
    """Move what one old queue holds now, batch by batch; the number moved."""
    name = queue.name
    if name in result.missing:
        return 0
    # py-amqp's channel: kombu's stubs say StdChannel, which has no queue_declare.
    channel: Any = source.channel()
    try:
        channel.queue_declare(name, passive=True)
    except NotFound:
        # Never declared on the old side (a tier it did not use): the passive
        # declare closed the channel, nothing to move.
        result.missing.add(name)
        return 0
    if name not in result.moved:
        queue(target_channel).declare()  # as this process declares it: quorum, say
        result.moved[name] = 0
    moved = 0
    try:
        while True:
            batch = list(_taken(channel, name, BATCH))
            if not batch:
                return moved
            for message in batch:
                # Returns once the broker confirmed it; raises if it refused it.
                target_channel.basic_publish_confirm(
                    Message(message.body, **message.properties),
                    exchange="",
                    routing_key=name,
                    confirm_timeout=settings.MESSAGING_CONFIRM_TIMEOUT,
                )
            # Every one of the batch is on the new side: the old side may let go.
            channel.basic_ack(batch[-1].delivery_tag, multiple=True)
            moved += len(batch)
            result.moved[name] += len(batch)
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def _taken(channel, name: str, limit: int) -> Iterator[Message]:
    for _ in range(limit):
        message = channel.basic_get(name, no_ack=False)
        if message is None:
            return
        yield message


@contextlib.contextmanager
def _connected(url: str) -> Iterator:
    connection = Connection(url, connect_timeout=current_app.conf.broker_connection_timeout)
    try:
        # A cluster's URL (nodes separated by ";"): each node is tried once.
        connect_once_to_each(connection)
    except Exception as exc:
        raise MoveError(f"cannot reach {connection.as_uri()}: {exc}") from exc
    try:
        yield connection
    finally:
        with contextlib.suppress(Exception):
            connection.release()


def _vhost_of(url: str) -> str:
    return Connection(url).as_uri(include_password=False)

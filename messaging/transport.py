"""The one way to a queue: task messages built by Celery's own parts, confirmed with one wait.

Every route of ours to a queue ends here: the dispatch after commit and the
relay (``messaging.outbox``), a redrive (``messaging.dead_letters``) and a
retry (``messaging.delivery``) hand ``send`` a list of ``Copy``, one per
handler that is to get a message. (A delivery whose worker process died is
sent again by Celery itself, as a retry: ``retry_on_worker_lost``.)

A retry waits out its delay on RabbitMQ, in a retry queue of its handler's
queue (``messaging.queues``) that hands it back when the delay is over; its
delay is one of the queues' tiers (``delay_tiers``). The file-system transport
has no such queues: there a retry carries a countdown, which the worker
holds until it is due.

On RabbitMQ with publisher confirms every copy goes out on a kept-open
channel in confirm mode and the sender waits once, until the broker has
confirmed the last of them. An event for several queues is published once,
with the other queues in its ``CC`` header, and RabbitMQ copies it into each
(``messaging.fanout``). On a nack, a timeout or a lost connection ``send``
raises and none of the batch counts as sent (the inbox absorbs whatever did
get through when it is sent again). Other brokers (the file-system transport)
get one message per copy from Celery's producer pool, with no confirm.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from django.conf import settings
from kombu import Connection, Queue
from kombu.utils.uuid import uuid

from . import queues
from .broker_urls import connect_once_to_each, is_amqp
from .fanout import Subscriber, fanned_out


class ConfirmsFailed(Exception):
    """The broker did not confirm every message of the batch."""


@dataclass(frozen=True, eq=False)
class Copy:
    """One message for one handler: the envelope's wire form, and how far its delivery got."""

    handler: Subscriber
    wire: dict[str, Any]
    # A retry: the deliveries so far, how many seconds from now to deliver
    # it again (one of delay_tiers on RabbitMQ), and the task keywords it carries
    # beside the envelope.
    retries: int = 0
    delay: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_plain(self) -> bool:
        """A first delivery, which may share one published message with other queues."""
        return not (self.retries or self.delay or self.extra)

    @property
    def destination(self) -> Queue:
        """The queue it is published to: its handler's, or a retry queue of it."""
        if self.delay and delayed_by_broker():
            return _retry_queue(self.handler.queue, self.delay, settings.MESSAGING_QUEUE_TYPE)
        return declaration(self.handler)


def send(copies: list[Copy]) -> None:
    """Put every copy on its handler's queue; returns once the broker confirmed them all.

    A channel kept open by an earlier send may have been closed by the broker
    since (a restart, a forced close): then the batch goes once more on a new
    connection. A timeout or a nack is not retried: the caller's fallback
    takes over (the relay for a dispatch, the broker's redelivery for a
    retry, a skipped redrive that staff can run again).
    """
    if not copies:
        return
    if not confirms_supported():
        _send_unconfirmed(copies)
        return
    channel, reused = _take_channel()
    try:
        channel.send(copies)
    except Exception as exc:
        channel.close()
        if not reused or isinstance(exc, (ConfirmsFailed, TimeoutError)):
            raise
        channel = _ConfirmChannel()
        try:
            channel.send(copies)
        except Exception:
            channel.close()
            raise
    _give_back(channel)


def delayed_by_broker() -> bool:
    """RabbitMQ holds a retry for its delay, in a retry queue; other brokers leave it to Celery."""
    return is_amqp(current_app.conf.broker_url)


def delay_tiers() -> tuple[float, ...] | None:
    """The delays a retry may wait on RabbitMQ, one retry queue each; None: any (a countdown)."""
    if not delayed_by_broker():
        return None
    return queues.retry_delays(
        backoff=settings.MESSAGING_RETRY_BACKOFF, backoff_max=settings.MESSAGING_RETRY_BACKOFF_MAX
    )


@functools.cache
def _retry_queue(queue: str, delay: float, queue_type: str) -> Queue:
    return queues.retry_queue(queue, delay=delay, queue_type=queue_type)


def confirms_supported() -> bool:
    """Only RabbitMQ with publisher confirms has a confirm to wait for."""
    options = current_app.conf.broker_transport_options or {}
    return is_amqp(current_app.conf.broker_url) and bool(options.get("confirm_publish"))


def task_reprs(wire: dict) -> dict:
    """A short description of a delivery for Celery's monitoring (Flower, events, logs).

    Without it Celery builds a truncated repr of the whole envelope for
    every publish, which costs more CPU than the publish itself.
    """
    kwargs = f"{{'envelope': {wire.get('type')} v{wire.get('version')} {wire.get('message_id')}}}"
    return {"argsrepr": "()", "kwargsrepr": kwargs}


def _messages(copies: Iterable[Copy], fan_out: bool) -> Iterator[list[Copy]]:
    """The published messages: copies of one envelope for several queues share one."""
    for _, group in itertools.groupby(copies, key=lambda copy: id(copy.wire)):
        one_per_queue: dict[str, Copy] = {}
        for copy in group:
            if fan_out and copy.is_plain and copy.handler.queue not in one_per_queue:
                one_per_queue[copy.handler.queue] = copy
            else:
                yield [copy]
        if one_per_queue:
            yield list(one_per_queue.values())


def _publish(producer, copies: list[Copy], declare: list, **options) -> None:
    """The task message ``apply_async`` would send, built and published by Celery's own parts.

    ``apply_async`` spends more than half of a publish on per-call set-up
    that a handler's task never needs: merging options, routing by name, a
    result object. Here the message is made by ``app.amqp.as_task_v2`` and
    sent by ``app.amqp.send_task_message`` (publish signals included);
    parent and root ids follow the task being handled, as with
    ``apply_async``. For several copies (each on its own queue) it is
    addressed to them all and routed to every queue by RabbitMQ.
    """
    app = current_app
    first = copies[0]
    name, headers = first.handler.name, None
    if len(copies) > 1:
        name, headers = fanned_out([copy.handler for copy in copies])
    root_id = parent_id = None
    parent = app.current_worker_task
    if parent is not None:
        root_id = parent.request.root_id or parent.request.id
        parent_id = parent.request.id
    message = app.amqp.as_task_v2(
        uuid(),
        name,
        kwargs={"envelope": first.wire, **first.extra},
        retries=first.retries,
        countdown=None if delayed_by_broker() else first.delay,
        root_id=root_id,
        parent_id=parent_id,
        reply_to=app.thread_oid,
        ignore_result=True,
        **task_reprs(first.wire),
    )
    app.amqp.send_task_message(
        producer,
        name,
        message,
        queue=first.destination,
        declare=declare,
        headers=headers,
        **options,
    )


def declaration(handler: Subscriber) -> Queue:
    """The queue a handler is consumed from, as it is declared.

    An app's queue is Celery's; a queue that no worker consumes (the event
    log's stream) comes with its own declaration.
    """
    own = getattr(handler, "declaration", None)
    return own if own is not None else current_app.amqp.queues[handler.queue]


def _send_unconfirmed(copies: list[Copy]) -> None:
    app = current_app
    with app.producer_or_acquire() as producer:
        for message in _messages(copies, fan_out=False):
            _publish(
                producer,
                message,
                declare=[message[0].destination],
                retry=True,
                retry_policy=app.conf.task_publish_retry_policy,
            )


class _Confirms:
    """Tracks the broker's acks and nacks on one channel in confirm mode."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.published = 0
        self.acked = 0
        self.nacked = False
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.confirm_select()

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        # RabbitMQ numbers a channel's publishes from 1 and acks them in order.
        self.acked = max(self.acked, delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.nacked = True

    def wait_for_all(self, connection: Connection, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < self.published and not self.nacked:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfirmsFailed(
                    f"{self.published - self.acked} of {self.published} publishes "
                    f"not confirmed within {timeout}s"
                )
            try:
                connection.drain_events(timeout=left)
            except TimeoutError:
                continue
        if self.nacked:
            raise ConfirmsFailed("the broker refused (nacked) a message of the batch")


class _ConfirmChannel:
    """A connection of its own with one channel in confirm mode."""

    def __init__(self) -> None:
        app = current_app
        self.broker_url = app.conf.broker_url
        # Confirms are waited for here, once per batch, not by every publish.
        options = {**(app.conf.broker_transport_options or {}), "confirm_publish": False}
        self.connection = Connection(
            self.broker_url,
            transport_options=options,
            connect_timeout=app.conf.broker_connection_timeout,
        )
        # A node of the list that is down is passed over: the next one takes the batch.
        connect_once_to_each(self.connection)
        self.confirms = _Confirms(self.connection.channel())
        self.producer = app.amqp.Producer(self.confirms.channel)
        # Queues declared on this channel: a publish to a queue that does not
        # exist would be confirmed and dropped, so each is declared once.
        self.declared: set[str] = set()

    def send(self, copies: list[Copy]) -> None:
        """Publish every copy, then wait once for all the confirms."""
        for message in _messages(copies, fan_out=settings.MESSAGING_FAN_OUT):
            undeclared = {
                c.destination.name: c.destination
                for c in message
                if c.destination.name not in self.declared
            }
            _publish(
                self.producer,
                message,
                declare=[undeclared[name] for name in sorted(undeclared)],
                retry=False,
            )
            self.confirms.published += 1
            self.declared |= undeclared.keys()
        self.confirms.wait_for_all(self.connection, timeout=settings.MESSAGING_CONFIRM_TIMEOUT)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.release()


# Confirm channels kept open between sends, shared by the threads of a
# process: a send takes one (or opens one) and gives it back when done, so a
# server that starts a thread per request (runserver) reuses them too.
_idle: list[_ConfirmChannel] = []
_idle_lock = threading.Lock()
# More idle than this (after a burst of concurrent sends) are closed.
MAX_IDLE_CHANNELS = 4


def _forget_channels_in_child() -> None:
    # A forked child must not write to its parent's sockets; the parent's
    # channel objects are left alone (closing them would close the parent's).
    global _idle, _idle_lock
    _idle, _idle_lock = [], threading.Lock()


os.register_at_fork(after_in_child=_forget_channels_in_child)


def _take_channel() -> tuple[_ConfirmChannel, bool]:
    """An idle channel to this broker, or a new one; and whether it was open before."""
    stale = []
    channel = None
    with _idle_lock:
        while _idle and channel is None:
            candidate = _idle.pop()
            if candidate.broker_url == current_app.conf.broker_url:
                channel = candidate
            else:
                stale.append(candidate)
    for candidate in stale:
        candidate.close()
    if channel is not None:
        return channel, True
    return _ConfirmChannel(), False


def _give_back(channel: _ConfirmChannel) -> None:
    with _idle_lock:
        if len(_idle) < MAX_IDLE_CHANNELS:
            _idle.append(channel)
            return
    channel.close()

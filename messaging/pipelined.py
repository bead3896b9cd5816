"""Many messages to RabbitMQ, then one wait for all their confirms.

A publish with confirms waits one round trip (and RabbitMQ's write to disk)
for each message. A committed event goes to several queues, and the relay
sends hundreds at a time: here every message goes out on one channel in
confirm mode, and the producer waits once until the broker has confirmed
the last of them. An event for several queues is published once, and
RabbitMQ copies it into each of them (``messaging.fanout``). A message counts as
sent only once every copy of it is confirmed; on a nack, a timeout or a
lost connection, none of the batch is, and the relay sends it again later
(the inbox absorbs whatever did get through).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator

from celery import current_app
from django.conf import settings
from kombu import Connection
from kombu.utils.uuid import uuid

from .consumers import Handler, handlers_for, task_reprs
from .fanout import fanned_out
from .messages import Envelope, registry


class ConfirmsFailed(Exception):
    """The broker did not confirm every message of the batch."""


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


def subscribers(envelope: Envelope) -> list[Handler]:
    """The handlers this message goes to, after their ``when`` filters."""
    message_class = registry.get(envelope.type, envelope.version)
    handlers = handlers_for(message_class)
    if any(handler.when is not None for handler in handlers):
        message = registry.read(envelope)
        handlers = [handler for handler in handlers if handler.wants(message)]
    return handlers


def supported() -> bool:
    """Only RabbitMQ with publisher confirms has a confirm to wait for."""
    options = current_app.conf.broker_transport_options or {}
    return current_app.conf.broker_url.startswith(("amqp", "pyamqp")) and bool(
        options.get("confirm_publish")
    )


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
        self.confirms = _Confirms(self.connection.channel())
        self.producer = app.amqp.Producer(self.confirms.channel)
        # Queues declared on this channel: a publish to a queue that does not
        # exist would be confirmed and dropped, so each is declared once.
        self.declared: set[str] = set()

    def send(self, copies: Iterable[tuple[Handler, Envelope]]) -> None:
        """Publish each message to its handlers' queues, then wait once for all the confirms.

        A message for several queues is published once and RabbitMQ copies it
        into each (``messaging.fanout``); a second handler of the same message
        on one queue gets a message of its own.
        """
        fan_out = settings.MESSAGING_FAN_OUT
        for envelope, handlers in _by_message(copies):
            wire = envelope.to_wire()
            one_per_queue: dict[str, Handler] = {}
            for handler in handlers:
                if not fan_out or handler.queue in one_per_queue:
                    self._publish([handler], wire)
                else:
                    one_per_queue[handler.queue] = handler
            if one_per_queue:
                self._publish(list(one_per_queue.values()), wire)
        self.confirms.wait_for_all(self.connection, timeout=settings.MESSAGING_CONFIRM_TIMEOUT)

    def _publish(self, handlers: list[Handler], wire: dict) -> None:
        """The task message ``apply_async`` would send, built and published by Celery's own parts.

        ``apply_async`` spends more than half of a publish on per-call set-up
        that a handler's task never needs: merging options, routing by name,
        a producer from the pool, a result object. Here the message is made
        by ``app.amqp.as_task_v2`` and sent by ``app.amqp.send_task_message``
        (publish signals included); parent and root ids follow the task
        being handled, as with ``apply_async``. For one handler it is that
        handler's task; for several (each on its own queue) it is addressed
        to them all and routed to every queue by RabbitMQ.
        """
        first = handlers[0]
        app = first.task.app
        name, headers = first.name, None
        if len(handlers) > 1:
            name, headers = fanned_out(handlers)
        task_id = uuid()
        root_id = parent_id = None
        parent = app.current_worker_task
        if parent is not None:
            root_id = parent.request.root_id or parent.request.id
            parent_id = parent.request.id
        message = app.amqp.as_task_v2(
            task_id,
            name,
            kwargs={"envelope": wire},
            root_id=root_id,
            parent_id=parent_id,
            reply_to=app.thread_oid,
            ignore_result=True,
            **task_reprs(wire),
        )
        # A queue that does not exist would drop its copy, confirmed: each
        # is declared once on this channel.
        undeclared = [h.queue for h in handlers if h.queue not in self.declared]
        app.amqp.send_task_message(
            self.producer,
            name,
            message,
            queue=first.queue,
            retry=False,
            declare=[app.amqp.queues[queue] for queue in undeclared],
            headers=headers,
        )
        self.confirms.published += 1
        self.declared.update(undeclared)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.release()


def _by_message(
    copies: Iterable[tuple[Handler, Envelope]],
) -> Iterator[tuple[Envelope, list[Handler]]]:
    """Each message with its handlers (a message's copies come one after the other)."""
    for _, group in itertools.groupby(copies, key=lambda copy: id(copy[1])):
        listed = list(group)
        yield listed[0][1], [handler for handler, _ in listed]


class ConfirmedPublisher:
    """The relay's channel for batch after batch, closed at the end of the run.

    ``send(envelopes)`` enqueues every envelope to each of its subscribers
    and returns once the broker confirmed them all; it raises ConfirmsFailed,
    or the broker's connection error, if it did not.
    """

    def __enter__(self) -> ConfirmedPublisher:
        self.channel = _ConfirmChannel()
        return self

    def __exit__(self, *exc_info) -> None:
        self.channel.close()

    def send(self, envelopes: Iterable[Envelope]) -> None:
        self.channel.send(
            (handler, envelope) for envelope in envelopes for handler in subscribers(envelope)
        )


# Confirm channels kept open between dispatches, shared by the threads of a
# process: a dispatch takes one (or opens one) and gives it back when done, so
# a server that starts a thread per request (runserver) reuses them too.
_idle: list[_ConfirmChannel] = []
_idle_lock = threading.Lock()
# More idle than this (after a burst of concurrent dispatches) are closed.
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


class DispatchBatch:
    """The copies of one committed message, sent together and confirmed with one wait.

    Subscribers ``add`` their copy while ``message_committed`` is sent;
    ``confirm()`` then publishes them all on one kept-open channel and
    returns once the broker confirmed every one. A channel kept open by an
    earlier dispatch may have been closed by the broker since (a restart, a
    forced close): then the batch is sent once more on a new connection. A
    timeout is not retried: the broker is silent, and the relay takes over.
    """

    def __init__(self) -> None:
        self.copies: list[tuple[Handler, Envelope]] = []

    def add(self, handler: Handler, envelope: Envelope) -> None:
        self.copies.append((handler, envelope))

    def confirm(self) -> None:
        if not self.copies:
            return
        channel, reused = _take_channel()
        try:
            channel.send(self.copies)
        except Exception as exc:
            channel.close()
            if not reused or isinstance(exc, (ConfirmsFailed, TimeoutError)):
                raise
            # A stale kept channel: once more on a new connection. Copies
            # that did get through the first time are absorbed by the inbox.
            channel = _ConfirmChannel()
            try:
                channel.send(self.copies)
            except Exception:
                channel.close()
                raise
        _give_back(channel)

"""Celery's monitoring events (what Flower shows), sent without the worker's event loop waiting.

Celery publishes a worker's events (``worker-online``, a ``worker-heartbeat``
every two seconds, and the task events Flower turns on with its
``enable_events`` remote control) from the event loop, on a connection
that, when the broker goes silent, sits there timing out and reconnecting:
the loop then no longer sees the missed AMQP heartbeats that tell it the
broker is gone. Here the loop only hands each event to ``EventSender``, a
thread with a connection of its own (the broker's socket timeouts, one
connection attempt at a time, a pause after each failure), which publishes
it: while the broker does not answer, events wait in a bounded queue (past
its bound the newest are dropped), a publish that fails drops its event, and
the loop never waits. So Celery's own heartbeat step (``Heart``) runs again,
and Flower sees the workers online, and offline while their broker is away.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from celery.events.dispatcher import EventDispatcher
from celery.events.event import get_exchange
from celery.worker.consumer.events import Events as CeleryEvents
from celery.worker.state import reserved_requests
from kombu import Connection, Producer

from .broker_urls import connect_once_to_each, is_amqp

logger = logging.getLogger(__name__)

# Events waiting for the sender thread; past this many, new ones are dropped.
CAPACITY = 1000
# After a failed connection or publish, the pause before the next attempt to connect.
RETRY_AFTER = 2.0
# At shutdown, how long the sender may take to send what is left (worker-offline).
SHUTDOWN_WAIT = 2.0

_STOP = object()


class EventSender(threading.Thread):
    """Publishes the events handed to it on a broker connection of its own; never blocks."""

    def __init__(
        self,
        app,
        hostname: str,
        *,
        url: str | None = None,
        capacity: int = CAPACITY,
        retry_after: float = RETRY_AFTER,
    ):
        super().__init__(name="EventSender", daemon=True)
        self.app = app
        self.url = url  # the app's broker unless given
        self.headers = {"hostname": hostname}
        self.retry_after = retry_after
        self.pending: queue.Queue = queue.Queue(maxsize=capacity)
        self.sent = 0
        self.dropped = 0
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._retry_at = 0.0
        self._failing = False
        self.exchange = get_exchange(app.connection_for_write(url), name=app.conf.event_exchange)

    def offer(self, event, routing_key: str) -> None:
        """Hand an event over to be sent; never waits. Dropped when too many wait already."""
        try:
            self.pending.put_nowait((event, routing_key))
        except queue.Full:
            self.dropped += 1

    def stop(self, timeout: float = SHUTDOWN_WAIT) -> None:
        """Send what is waiting, within ``timeout``; the thread is left to die with the process."""
        try:
            self.pending.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self.join(timeout)

    def run(self) -> None:
        while (item := self.pending.get()) is not _STOP:
            self._send(*item)
        self._disconnect()

    def _send(self, event, routing_key: str) -> None:
        producer = self._producer
        if producer is None:
            # A pause after a failure; meanwhile the events offered wait, up to the bound.
            time.sleep(max(self._retry_at - time.monotonic(), 0))
            try:
                producer = self._connect()
            except Exception as exc:
                self._failed(exc)
                return
        try:
            producer.publish(
                event,
                routing_key=routing_key,
                exchange=self.exchange.name,
                declare=[self.exchange],
                serializer=self.app.conf.event_serializer,
                headers=self.headers,
                delivery_mode=1,  # transient, as Celery's own
                retry=False,
            )
        except Exception as exc:
            self._failed(exc)
            return
        self.sent += 1
        if self._failing:
            self._failing = False
            logger.info("Monitoring events sent again (%s dropped so far)", self.dropped)

    def _connect(self) -> Producer:
        # The broker's own settings: its socket timeouts bound every read and
        # write, publisher confirms (on RabbitMQ) make a silent broker show
        # within that timeout. No AMQP heartbeat: nothing here would answer it.
        connection = self.app.connection_for_write(self.url, heartbeat=0)
        try:
            connect_once_to_each(connection)
            self._producer = producer = connection.Producer(auto_declare=False)
        except Exception:
            connection.collect()
            raise
        self._connection = connection
        return producer

    def _failed(self, exc: Exception) -> None:
        self.dropped += 1
        self._disconnect()
        self._retry_at = time.monotonic() + self.retry_after
        if not self._failing:
            self._failing = True
            logger.warning(
                "Could not send monitoring events (Flower's), trying again every %.0f s: %s: %s",
                self.retry_after,
                type(exc).__name__,
                exc,
            )

    def _disconnect(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            # Without waiting for a broker that does not answer.
            connection.collect()


class Dispatcher(EventDispatcher):
    """Celery's event dispatcher, handing each event to the sender instead of publishing it.

    Everything else is Celery's: the groups remote control turns on and off,
    the task events buffered and sent together as ``task.multi``.
    """

    # Celery's own attributes, which celery-types leaves out or types as one callback.
    mutex: threading.Lock
    on_enabled: set[Callable[[], None]]  # type: ignore[assignment]  # a set in Celery

    # No sender (None) when the worker sends no events: the dispatcher then
    # starts disabled, and nothing but its enable() sets the producer.
    def __init__(self, *args, sender: EventSender | None, **kwargs):
        self.sender = sender
        super().__init__(*args, **kwargs)

    def enable(self) -> None:
        # Celery's makes a producer on the worker's connection; none is needed.
        with self.mutex:
            self.producer = self.sender
            self._closed = False
            self.enabled = True
        for callback in self.on_enabled:
            callback()

    def _publish(self, event, producer, routing_key, retry=False, retry_policy=None, **_):
        if producer is not None and self.sender is not None:
            self.sender.offer(event, routing_key)


class Events(CeleryEvents):
    """Celery's Events step, with the dispatcher above and one sender for the worker's life."""

    # Celery's name: the steps that require Celery's Events (Heart, Mingle)
    # find this one in its place instead of bringing Celery's back.
    name = CeleryEvents.name
    send_events: bool  # set by Celery's __init__; celery-types leaves it out

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.sender: EventSender | None = None

    def start(self, c) -> None:
        previous = self._close(c)
        enabled = self.send_events and _supports_events(c)
        if enabled and self.sender is None:
            self.sender = EventSender(c.app, c.hostname)
            self.sender.start()
        c.event_dispatcher = Dispatcher(
            c.app.connection_for_write(),  # only read for the exchange's type; never opened
            app=c.app,
            hostname=c.hostname,
            enabled=enabled,
            groups=self.groups,
            buffer_group=["task"] if c.hub else None,
            on_send_buffered=c.on_send_event_buffered if c.hub else None,
            sender=self.sender,
        )
        if previous is not None:
            # Requests reserved before the connection was lost report through the new one.
            for request in tuple(reserved_requests):
                request.eventer = c.event_dispatcher

    def _close(self, c):
        dispatcher = c.event_dispatcher
        if dispatcher is None:
            return None
        self.groups = dispatcher.groups  # as remote control left them
        dispatcher.disable()
        c.event_dispatcher = None
        return dispatcher

    def shutdown(self, c) -> None:
        self._close(c)
        if self.sender is not None:
            self.sender.stop()
            self.sender = None


def _supports_events(c) -> bool:
    # The file-system broker has no topic exchange to carry them to Flower.
    return is_amqp(c.app.conf.broker_url)

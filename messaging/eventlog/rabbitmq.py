"""The log as a RabbitMQ stream queue, ``events``, read over AMQP 0.9.1.

A stream keeps its messages after they are read; a consumer names where it
starts with ``x-stream-offset`` (``first``, ``next``, an offset, a time) and
each delivery carries its offset in the ``x-stream-offset`` header. The
entries are the task messages the dispatch published, whose body holds the
envelope. How long they are kept is EVENT_LOG_MAX_AGE and
EVENT_LOG_MAX_LENGTH_BYTES, whichever is reached first (RabbitMQ removes
whole segments, the oldest first).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from celery import current_app
from django.conf import settings
from kombu import Connection, Queue

from ..broker_urls import connect_once_to_each
from .entries import LogEntry, LogError, Start, consecutive_between

QUEUE = "events"
# Deliveries the broker may send ahead of our acks; a stream consumer must set one.
PREFETCH = 2000
# Once some entries are in, how long a read waits for more before it returns them.
MORE_WAIT = 0.001
# How long head() and first() wait for the first delivery of a stream that
# holds entries (a large stream on a busy broker takes a good part of a second).
EDGE_WAIT = 10.0
# How long they wait when the broker counts no entry (its count lags by seconds).
EMPTY_WAIT = 1.0


@functools.cache
def declaration() -> Queue:
    """The stream, as every connection of ours declares it (with the same arguments)."""
    return Queue(
        QUEUE,
        durable=True,
        auto_delete=False,
        no_declare=False,
        queue_arguments={
            "x-queue-type": "stream",
            "x-max-age": settings.EVENT_LOG_MAX_AGE,
            "x-max-length-bytes": settings.EVENT_LOG_MAX_LENGTH_BYTES,
        },
    )


@dataclass(frozen=True)
class LogSubscriber:
    """The log in an event's routing: one more queue, which no worker consumes."""

    name: str = "messaging.event_log"
    queue: str = QUEUE

    @property
    def declaration(self) -> Queue:
        return declaration()


LOG_SUBSCRIBER = LogSubscriber()


def _connect() -> Connection:
    connection = Connection(
        current_app.conf.broker_url,
        connect_timeout=current_app.conf.broker_connection_timeout,
        # A reader drains its socket all the time; without heartbeats a
        # broker that went away is noticed when an ack is written.
        heartbeat=0,
    )
    try:
        connect_once_to_each(connection)
    except Exception as exc:
        raise LogError(f"cannot reach the broker for the event log: {exc}") from exc
    return connection


# Where a reader may start: a public reader's starts, and the last chunk (the head's own read).
ReaderStart = Start | Literal["last"]


def _offset_argument(start: ReaderStart) -> ReaderStart:
    if isinstance(start, (int, datetime)) or start in ("first", "next", "last"):
        return start
    raise LogError(f"a log reader starts at first, next, an offset or a time, not {start!r}")


class StreamReader:
    """One consumer of the stream, reading from ``start`` on."""

    def __init__(self, start: ReaderStart, *, prefetch: int = PREFETCH) -> None:
        self.connection = _connect()
        self.raw = self.connection.connection  # py-amqp's, for its streams arguments
        self.channel = self.raw.channel()
        self.buffer: deque[LogEntry] = deque()
        self.last_tag: int | None = None
        declaration()(self.channel).declare()
        self.channel.basic_qos(0, prefetch, False)
        self.channel.basic_consume(
            QUEUE,
            callback=self._on_message,
            arguments={"x-stream-offset": _offset_argument(start)},
        )

    def _on_message(self, message) -> None:
        offset = (message.headers or {}).get("x-stream-offset")
        self.last_tag = message.delivery_tag
        if isinstance(offset, int):
            self.buffer.append(LogEntry.from_task_body(offset, message.body))

    def read(self, *, max_entries: int, timeout: float) -> list[LogEntry]:
        deadline = time.monotonic() + timeout
        while len(self.buffer) < max_entries:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                self.raw.drain_events(timeout=min(left, MORE_WAIT) if self.buffer else left)
            except TimeoutError:
                if self.buffer:
                    break
        entries = [self.buffer.popleft() for _ in range(min(max_entries, len(self.buffer)))]
        if self.last_tag is not None:
            # One ack for everything delivered so far gives the broker room
            # to send more at once, while these are taken (the offsets
            # themselves are ours to keep, and the buffer is never larger
            # than one read's worth plus what came with it).
            self.channel.basic_ack(self.last_tag, multiple=True)
            self.last_tag = None
        return entries

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.release()


class StreamLog:
    name = "rabbitmq"

    def reader(self, start: Start) -> StreamReader:
        return StreamReader(start)

    def head(self) -> int | None:
        # AMQP 0.9.1 has no way to ask a stream for its last offset: read the
        # last chunk ("last") and keep the highest offset delivered.
        return self._edge("last", max)

    def append(self, envelopes) -> None:
        """Nothing to do: the dispatch's publish copies each event into the stream."""

    def entries_between(self, after: int | None, upto: int, *, limit: int) -> int | None:
        return consecutive_between(after, upto)

    def first(self) -> int | None:
        return self._edge("first", min)

    def _edge(
        self, start: Literal["first", "last"], pick: Callable[[list[int]], int]
    ) -> int | None:
        reader = StreamReader(start, prefetch=PREFETCH)
        try:
            # The broker's count of a stream's messages says it holds some,
            # but it is a statistic, refreshed every few seconds: a stream
            # written to moments ago still counts none. Then a short wait for
            # a delivery tells; with a count, a long one.
            counted = reader.channel.queue_declare(QUEUE, passive=True).message_count
            offsets: list[int] = []
            batch = reader.read(max_entries=PREFETCH, timeout=EDGE_WAIT if counted else EMPTY_WAIT)
            if not batch:
                if not counted:
                    return None
                raise LogError(f"the stream {QUEUE!r} holds entries but sent none in {EDGE_WAIT}s")
            while batch:
                offsets.extend(entry.offset for entry in batch)
                if start == "first":
                    break
                batch = reader.read(max_entries=PREFETCH, timeout=0.05)
            return pick(offsets)
        finally:
            reader.close()

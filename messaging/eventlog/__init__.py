"""The event log: every event that was dispatched, in one ordered, replayable log.

Stream processors (``analytics``) read it from an offset; nothing is ever
consumed away, so a processor can start again anywhere, and a projection can
be rebuilt from the first entry. Three backends sit behind the one interface
here, chosen by EVENT_LOG_BACKEND:

- ``rabbitmq``: a RabbitMQ stream queue, ``events``. The copy of an event in
  the log is made by the publish that dispatches it, under the same publisher
  confirm: ``events`` is one more queue in the message's routing
  (``log_subscriber``), so an event is in the log if and only if it was
  dispatched. The offset is the stream's.
- ``database``: the outbox table itself (the embedded default, on SQLite,
  whose single writer makes id order commit order); the offset is the row's id.
- ``redis``: a Redis stream. No publish reaches it, so the dispatch appends
  each batch's events itself (``log_append``) after the broker confirmed
  them and before their rows are marked dispatched; if the append fails the
  rows stay pending and the relay sends and appends them again. The offset
  is the entry's id, ``ms-seq``, as ``ms << 20 | seq``.

A relay resend can put an event in the log twice: readers deduplicate by
message id. A Kafka backend would be one more module with a reader, a
``head`` and, where the broker does not copy the publish itself, an append.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.conf import settings

from ..messages import Envelope
from . import database, rabbitmq, redis
from .entries import EventLog, LogEntry, LogError, LogReader, Start

__all__ = [
    "EventLog",
    "LogEntry",
    "LogError",
    "LogReader",
    "Start",
    "event_log",
    "log_append",
    "log_subscriber",
]

BACKENDS: dict[str, Callable[[], EventLog]] = {
    "rabbitmq": rabbitmq.StreamLog,
    "database": database.TableLog,
    "redis": redis.RedisLog,
}


def event_log() -> EventLog:
    """The log EVENT_LOG_BACKEND names."""
    try:
        backend = BACKENDS[settings.EVENT_LOG_BACKEND]
    except KeyError:
        raise LogError(
            f"EVENT_LOG_BACKEND={settings.EVENT_LOG_BACKEND!r} is not a log backend: "
            f"{' or '.join(BACKENDS)}"
        ) from None
    return backend()


def log_subscriber() -> rabbitmq.LogSubscriber | None:
    """What the dispatch adds to an event's routing so that it lands in the log, if anything."""
    return rabbitmq.LOG_SUBSCRIBER if settings.EVENT_LOG_BACKEND == "rabbitmq" else None


def log_append(envelopes: Sequence[Envelope]) -> None:
    """Add dispatched events to a log that no publish copies them into (redis).

    The dispatch calls it once the broker has confirmed the batch and before
    the rows are marked dispatched; it raises when the events could not be
    added, and they then count as not dispatched (the relay tries again).
    For rabbitmq and database it does nothing.
    """
    if envelopes:
        event_log().append(envelopes)

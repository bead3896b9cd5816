"""The outbox's rows after commit: send them to their subscribers and record how it went.

The dispatch after a producer's commit (``messaging.publishing``) and the
relay (``messaging.relay``) both come here: each entry's subscribers are
looked up in the one subscription table (an event also goes to the event
log, ``messaging.eventlog``), every copy goes out in one batch
with one wait for the broker's confirms (``messaging.transport``); a log that
no publish reaches (Redis) then has the batch's events appended; and only
then are the rows marked dispatched and ``message_confirmed`` sent. Should
the broker or that append fail, no row is marked, and the relay sends them
again later (the inbox, and the log's readers, absorb whatever did get
through).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection
from django.db.models import F
from django.utils import timezone

from . import spans, transport
from .eventlog import log_append, log_subscriber
from .messages import Envelope, Message, MessageError
from .models import OutboxMessage
from .signals import message_confirmed, notify
from .sql import ASYNC_COMMIT, quoted_names
from .subscriptions import subscribers

logger = logging.getLogger(__name__)


class Entry(NamedTuple):
    """A committed outbox row: its key, its envelope, and its payload if still at hand."""

    pk: int
    envelope: Envelope
    message: Message | None = None

    @classmethod
    def of(cls, row: OutboxMessage) -> Entry:
        return cls(row.pk, row.to_envelope())


@dataclass(frozen=True)
class Outcome:
    dispatched: int
    failed: int
    # Set when the broker itself (or the event log's Redis) failed: the next
    # entries had better wait.
    broker_error: str = ""


def outbox_dispatch(entries: list[Entry]) -> Outcome:
    """Send committed entries to their subscribers' queues, confirmed with one wait."""
    copies: list[transport.Copy] = []
    sendable: list[Entry] = []
    destinations: list[tuple[Envelope, list[str]]] = []
    # Every event also goes to the log, in the same publish where the broker
    # copies it (messaging.eventlog).
    log = log_subscriber()
    unknown = 0
    for entry in entries:
        try:
            handlers: Sequence[transport.Subscriber] = subscribers(entry.envelope, entry.message)
        except Exception as exc:
            # Its class was removed or renamed since it was recorded, or a
            # handler's when filter fails on it: it waits, the others go.
            error = str(exc) if isinstance(exc, MessageError) else f"{type(exc).__name__}: {exc}"
            _failed([entry], error)
            unknown += 1
            continue
        if log is not None and entry.envelope.kind == "event":
            handlers = [*handlers, log]
        wire = entry.envelope.to_wire()
        copies.extend(transport.Copy(handler, wire) for handler in handlers)
        sendable.append(entry)
        destinations.append((entry.envelope, [handler.queue for handler in handlers]))
    try:
        with spans.messages_sending(destinations):
            transport.send(copies)
            # Before the rows are marked: an event is in the log if and only if
            # it was dispatched (a no-op where the publish made the copy).
            log_append([entry.envelope for entry in sendable if entry.envelope.kind == "event"])
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        _failed(sendable, error)
        return Outcome(dispatched=0, failed=len(entries), broker_error=error)
    if sendable:
        _mark_dispatched([entry.pk for entry in sendable])
        notify(message_confirmed, envelopes=[entry.envelope for entry in sendable])
    return Outcome(dispatched=len(sendable), failed=unknown)


def outbox_record_failure(*, pks: list[int], error: str) -> None:
    """Note on each row that an attempt to send it failed, and why (the relay tries again)."""
    OutboxMessage.objects.filter(pk__in=pks).update(
        dispatch_attempts=F("dispatch_attempts") + 1, last_dispatch_error=error[:2000]
    )


def _failed(entries: list[Entry], error: str) -> None:
    if not entries:
        return
    logger.warning(
        "Dispatch of %s incomplete, the relay will retry it: %s",
        ", ".join(f"{e.envelope.type} {e.envelope.message_id}" for e in entries[:5])
        + (f" and {len(entries) - 5} more" if len(entries) > 5 else ""),
        error,
    )
    outbox_record_failure(pks=[entry.pk for entry in entries], error=error)


def _mark_dispatched(pks: list[int]) -> None:
    if connection.vendor != "postgresql":
        OutboxMessage.objects.filter(pk__in=pks, dispatched_at__isnull=True).update(
            dispatched_at=timezone.now(),
            dispatch_attempts=F("dispatch_attempts") + 1,
            last_dispatch_error="",
        )
        return
    # One statement, one round trip. Should a database crash lose this mark,
    # the relay sends the message again and the inbox absorbs the copy: its
    # commit need not wait for the disk (set_config(..., true) holds for this
    # statement's transaction only, or the relay's, which marks nothing else).
    now = OutboxMessage._meta.get_field("dispatched_at").get_db_prep_value(
        timezone.now(), connection
    )
    with connection.cursor() as cursor:
        cursor.execute(_mark_dispatched_sql(), [now, list(pks)])


@functools.cache
def _mark_dispatched_sql() -> str:
    table, column = quoted_names(OutboxMessage)
    return (
        f"UPDATE {table} "
        f"SET {column['dispatched_at']} = %s, "
        f"{column['dispatch_attempts']} = {column['dispatch_attempts']} + 1, "
        f"{column['last_dispatch_error']} = '' "
        f"FROM {ASYNC_COMMIT} "
        f"WHERE {column['id']} = ANY(%s) AND {column['dispatched_at']} IS NULL"
    )

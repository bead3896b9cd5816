"""Publishing: write the message in the producer's transaction, send it after commit.

A producer calls ``publish(event)`` or ``send(command)`` inside its own
``transaction.atomic()``. The message is written to the outbox in that
transaction; a rollback leaves nothing behind and sends nothing. After the
commit, ``message_committed`` is sent for it and every subscribing app's
receiver enqueues its handler's task on that app's queue. On RabbitMQ the
message is published once for all those queues (RabbitMQ copies it into
each) on a kept-open confirm-mode channel, and the producer waits once for
the broker's confirm (``pipelined.DispatchBatch``); what a handler publishes
goes out in one such batch when its delivery ends (``dispatch_together``).
Only when all of them were confirmed is the message marked dispatched;
otherwise the relay sends it again later.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from . import pipelined
from .consumers import Dispatch, current_envelope, handlers_for
from .messages import (
    Command,
    Envelope,
    Event,
    Message,
    MessageError,
    MessageTooLarge,
    registry,
)
from .models import OutboxMessage
from .signals import message_committed

logger = logging.getLogger(__name__)


class NoHandler(Exception):
    """A command was sent that no handler is subscribed to."""


def publish(event: Event, *, correlation_id: str | None = None) -> Envelope:
    """Record an event in the current transaction; it is broadcast after commit."""
    if not isinstance(event, Event):
        raise TypeError(f"publish() takes an Event, not {type(event).__name__}; use send()")
    return _record(event, correlation_id=correlation_id)


def send(command: Command, *, correlation_id: str | None = None) -> Envelope:
    """Record a command in the current transaction; its one handler gets it after commit."""
    if not isinstance(command, Command):
        raise TypeError(f"send() takes a Command, not {type(command).__name__}; use publish()")
    if not handlers_for(type(command)):
        raise NoHandler(f"no handler is subscribed to the command {command.message_type}")
    return _record(command, correlation_id=correlation_id)


def _record(message: Message, *, correlation_id: str | None) -> Envelope:
    # Inside a handler, what is published now was caused by the message being
    # handled and belongs to the same conversation.
    cause = current_envelope()
    message_id = uuid.uuid4()
    envelope = Envelope(
        message_id=message_id,
        kind=message.kind,
        type=message.message_type,
        version=message.message_version,
        occurred_at=timezone.now(),
        correlation_id=correlation_id or (cause.correlation_id if cause else str(message_id)),
        causation_id=cause.message_id if cause else None,
        payload=message.model_dump(mode="json"),
    )
    _check_size(envelope)
    # No savepoint: should the row fail to go in, the producer's whole
    # transaction must roll back rather than commit its changes without it.
    with transaction.atomic(savepoint=False):
        row = OutboxMessage.from_envelope(envelope)
        row.save(force_insert=True)
        # Kept for the dispatch after commit, which need not read them back.
        row.published = (envelope, message)
        transaction.on_commit(lambda: _committed(row), robust=True)
    return envelope


# The rows committed inside dispatch_together(), per thread; None outside it.
_together = threading.local()


@contextmanager
def dispatch_together() -> Iterator[None]:
    """Dispatch the messages committed inside this block together, when it ends.

    A handler that publishes several messages in its transaction then waits
    once for the broker's confirms and marks them all dispatched in one
    UPDATE, instead of once per message. In a nested block the outer one
    dispatches.
    """
    if getattr(_together, "rows", None) is not None:
        yield
        return
    _together.rows = []
    try:
        yield
    finally:
        rows, _together.rows = _together.rows, None
        if rows:
            # As robust as on_commit(robust=True): the messages are committed
            # either way, and the relay sends what this could not.
            try:
                _dispatch_after_commit(rows)
            except Exception:
                logger.exception("Dispatch of %s committed messages failed", len(rows))


def _committed(row: OutboxMessage) -> None:
    gathered = getattr(_together, "rows", None)
    if gathered is not None:
        gathered.append(row)
    else:
        _dispatch_after_commit([row])


# Until when (time.monotonic()) this process leaves committed messages to the
# relay, because a dispatch just failed.
_dispatch_paused_until = 0.0


def _dispatch_after_commit(rows: list[OutboxMessage]) -> None:
    """Dispatch at once, unless the broker failed this process moments ago.

    While the broker is down or silent every dispatch would wait for its
    timeouts; for MESSAGING_DISPATCH_PAUSE seconds after a failure the
    producer does not wait at all and the relay sends the message instead.
    """
    global _dispatch_paused_until
    if time.monotonic() < _dispatch_paused_until:
        logger.debug("Dispatch paused; %s messages left to the relay", len(rows))
        return
    if not _dispatch(rows):
        _dispatch_paused_until = time.monotonic() + settings.MESSAGING_DISPATCH_PAUSE
        logger.warning(
            "Committed messages go to the relay for the next %ss, not to the broker at once",
            settings.MESSAGING_DISPATCH_PAUSE,
        )


def dispatch_pause_reset() -> None:
    """Dispatch the next committed message at once again (tests; a process that knows better)."""
    global _dispatch_paused_until
    _dispatch_paused_until = 0.0


def _check_size(envelope: Envelope) -> None:
    # Refused here, in the producer's transaction, rather than left to poison
    # a queue: the caller gets the error and nothing is recorded.
    size = len(json.dumps(envelope.to_wire(), separators=(",", ":")).encode())
    if size > settings.MESSAGING_MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"{envelope.type} v{envelope.version} is {size} bytes, more than the "
            f"{settings.MESSAGING_MAX_MESSAGE_BYTES} bytes MESSAGING_MAX_MESSAGE_BYTES allows"
        )


def outbox_dispatch(*, row: OutboxMessage) -> bool:
    """Hand one committed message to its subscribers' queues; True once all confirmed."""
    return _dispatch([row])


def _dispatch(rows: list[OutboxMessage]) -> bool:
    """Hand committed messages to their subscribers' queues; True once all were confirmed.

    With confirms, every copy of every message goes into one batch, confirmed
    with one wait: a failure there fails them all, and the relay sends them
    again (the inbox absorbs what did get through).
    """
    batch = pipelined.DispatchBatch() if pipelined.supported() else None
    sent: list[tuple[OutboxMessage, Envelope]] = []
    complete = True
    for row in rows:
        envelope, message = getattr(row, "published", None) or (row.to_envelope(), None)
        try:
            message_class = registry.get(envelope.type, envelope.version)
        except MessageError as exc:
            # Its class was removed or renamed since it was recorded.
            complete = _dispatch_failed(row, envelope, str(exc))
            continue
        dispatch = Dispatch(batch=batch, message=message)
        message_committed.send_robust(sender=message_class, envelope=envelope, dispatch=dispatch)
        if dispatch.failure is not None:
            complete = _dispatch_failed(row, envelope, _describe(dispatch.failure))
            if batch is None:
                break  # the broker failed: the rest go to the relay
            continue
        sent.append((row, envelope))
    if batch is not None and sent:
        try:
            batch.confirm()
        except Exception as exc:
            for row, envelope in sent:
                _dispatch_failed(row, envelope, _describe(exc))
            return False
    if sent:
        _mark_dispatched([row.pk for row, _ in sent])
    return complete and len(sent) == len(rows)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
    quote = connection.ops.quote_name
    column = {f.name: quote(f.column) for f in OutboxMessage._meta.fields}
    return (
        f"UPDATE {quote(OutboxMessage._meta.db_table)} "
        f"SET {column['dispatched_at']} = %s, "
        f"{column['dispatch_attempts']} = {column['dispatch_attempts']} + 1, "
        f"{column['last_dispatch_error']} = '' "
        "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit "
        f"WHERE {column['id']} = ANY(%s) AND {column['dispatched_at']} IS NULL"
    )


def _dispatch_failed(row: OutboxMessage, envelope: Envelope, error: str) -> bool:
    logger.warning(
        "Dispatch of %s %s incomplete, the relay will retry it: %s",
        envelope.type,
        envelope.message_id,
        error,
    )
    OutboxMessage.objects.filter(pk=row.pk).update(
        dispatch_attempts=F("dispatch_attempts") + 1, last_dispatch_error=error[:2000]
    )
    return False


RELAY_FAILURES_BEFORE_STOPPING = 3
# Messages the relay sends before it waits for their confirms (RabbitMQ).
RELAY_CONFIRM_CHUNK = 100


def _relay_pipelined(rows: list[OutboxMessage]) -> tuple[int, int]:
    """Send rows in chunks, each confirmed as a whole; returns (dispatched, failed).

    After a chunk fails the rest wait for the next run: the broker is then
    most likely unreachable.
    """
    dispatched = failed = 0
    sendable: list[tuple[OutboxMessage, Envelope]] = []
    try:
        with pipelined.ConfirmedPublisher() as publisher:
            for start in range(0, len(rows), RELAY_CONFIRM_CHUNK):
                sendable = []
                for row in rows[start : start + RELAY_CONFIRM_CHUNK]:
                    envelope = row.to_envelope()
                    try:
                        registry.get(envelope.type, envelope.version)
                    except MessageError as exc:
                        # Its class was removed or renamed since it was recorded.
                        _dispatch_failed(row, envelope, str(exc))
                        failed += 1
                        continue
                    sendable.append((row, envelope))
                publisher.send(envelope for _, envelope in sendable)
                _mark_dispatched([row.pk for row, _ in sendable])
                dispatched += len(sendable)
                sendable = []
    except Exception as exc:
        error = _describe(exc)
        unsent = [row.pk for row, _ in sendable] or [row.pk for row in rows[dispatched + failed :]]
        logger.warning("Relay: %s messages not confirmed, sent later: %s", len(unsent), error)
        OutboxMessage.objects.filter(pk__in=unsent).update(
            dispatch_attempts=F("dispatch_attempts") + 1, last_dispatch_error=error[:2000]
        )
        failed += len(unsent)
    return dispatched, failed


@dataclass(frozen=True)
class RelayResult:
    dispatched: int
    failed: int

    def __str__(self) -> str:
        return f"{self.dispatched} dispatched, {self.failed} failed"


def outbox_relay(
    *, batch_size: int | None = None, grace_seconds: float | None = None
) -> RelayResult:
    """Send pending messages older than the grace period, oldest first.

    Several relays may run at once: on PostgreSQL each takes rows the others
    have not locked. A message that fails is recorded and skipped; after a
    few failures in a row the batch stops, since the broker is then most
    likely unreachable and the next run will try again.
    """
    batch_size = batch_size or settings.MESSAGING_RELAY_BATCH
    if grace_seconds is None:
        grace_seconds = settings.MESSAGING_RELAY_GRACE
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    dispatched = failed = in_a_row = 0
    pending = OutboxMessage.objects.filter(
        dispatched_at__isnull=True, occurred_at__lte=cutoff
    ).order_by("id")
    locking = connection.features.has_select_for_update_skip_locked
    with transaction.atomic() if locking else nullcontext():
        if locking:
            pending = pending.select_for_update(skip_locked=True)
        rows = list(pending[:batch_size])
        if pipelined.supported():
            dispatched, failed = _relay_pipelined(rows)
        else:
            for row in rows:
                if outbox_dispatch(row=row):
                    dispatched, in_a_row = dispatched + 1, 0
                    continue
                failed, in_a_row = failed + 1, in_a_row + 1
                if in_a_row >= RELAY_FAILURES_BEFORE_STOPPING:
                    break
    if dispatched or failed:
        logger.info("Outbox relay: %s dispatched, %s failed", dispatched, failed)
    return RelayResult(dispatched=dispatched, failed=failed)

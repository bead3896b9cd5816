"""A stream processor, and how one batch of log entries is taken into its projection.

A processor reads the messages it names from the log and keeps a projection
(its tables, each row in a ``slot``). ``batch_commit`` takes a batch in one
database transaction: the projection's changes, the entries it skipped, the
message ids it has seen and its new offset commit together, so a processor
killed at any moment resumes from its last commit and counts nothing twice.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, NamedTuple
from uuid import UUID

from django.db import connection, models, transaction
from django.db.models import F

from messaging.eventlog import LogEntry
from messaging.messages import Envelope, Message, MessageError, registry
from messaging.sql import ASYNC_COMMIT, quoted_names

from .models import ProcessorState, SeenMessage, SkippedEntry, Slot

logger = logging.getLogger(__name__)


class Item(NamedTuple):
    """An entry the processor takes: its offset, envelope and payload."""

    offset: int
    envelope: Envelope
    message: Message


class Processor:
    """Base of the processors: subclasses name their messages and tables and ``process`` them.

    ``process`` runs inside the batch's transaction and may only write its own
    tables, in its own ``slot``. A processor that publishes does it there
    (through the outbox, committed with its offset) and only when it is not
    ``replaying``: a replay has no side effect.
    """

    name: ClassVar[str]
    message_classes: ClassVar[tuple[type[Message], ...]]
    # Its projection: the tables a replay rebuilds, compares and swaps.
    models: ClassVar[tuple[type[models.Model], ...]]
    # How long a batch may gather entries while more keep coming.
    batch_seconds: ClassVar[float] = 0.2

    def __init__(
        self, *, slot: str = Slot.LIVE, replaying: bool = False, state: dict | None = None
    ):
        self.slot = slot
        self.replaying = replaying
        self.state: dict = dict(state or {})

    def process(self, items: list[Item]) -> None:
        raise NotImplementedError

    def wants(self, message_type: str) -> bool:
        return message_type in self._wanted_types()

    @classmethod
    @functools.cache
    def _wanted_types(cls) -> frozenset[str]:
        return frozenset(message_class.message_type for message_class in cls.message_classes)


class Fenced(Exception):
    """Another process moved this processor's offset: this one reads from there again."""


@dataclass
class BatchResult:
    offset: int
    processed: int = 0
    skipped: int = 0
    duplicates: int = 0
    last_occurred_at: datetime | None = None
    skipped_entries: list[SkippedEntry] = field(default_factory=list)
    written: bool = True


def offset_commit(
    processor: Processor, *, expected_offset: int | None, offset: int, last_occurred_at
) -> None:
    """Commit an offset that moved past entries with nothing to write (fenced like a batch)."""
    with transaction.atomic():
        state = ProcessorState.objects.select_for_update().get(
            processor=processor.name, slot=processor.slot
        )
        if state.offset != expected_offset:
            raise Fenced(
                f"{processor.name} ({processor.slot}) is at {state.offset}, not {expected_offset}"
            )
        changes = {"offset": offset}
        if last_occurred_at is not None:
            changes["last_entry_occurred_at"] = last_occurred_at
        ProcessorState.objects.filter(pk=state.pk).update(**changes)


def batch_commit(
    processor: Processor,
    *,
    expected_offset: int | None,
    entries: list[LogEntry],
    defer_idle: bool = False,
) -> BatchResult:
    """Take ``entries`` into the processor's projection and move its offset past them, atomically.

    Raises Fenced, changing nothing, when the committed offset is no longer
    ``expected_offset`` (another process took these entries, or a replay swapped).
    With ``defer_idle``, a batch with nothing to write writes nothing (its
    ``written`` is False): taking those entries again after a crash changes
    nothing.
    """
    result = BatchResult(offset=entries[-1].offset)
    items = _items(processor, entries, result)
    if defer_idle and not items and not result.skipped_entries:
        # Nothing for this processor: its offset moves on in memory only,
        # and is committed with its next batch (or by offset_commit).
        result.written = False
        return result
    with transaction.atomic():
        state_pk, offset = _state_locked(processor)
        if offset != expected_offset:
            raise Fenced(
                f"{processor.name} ({processor.slot}) is at {offset}, not {expected_offset}"
            )
        items = _unseen(processor, items, result)
        if items:
            processor.process(items)
        SkippedEntry.objects.bulk_create(result.skipped_entries)
        ProcessorState.objects.filter(pk=state_pk).update(
            offset=result.offset,
            state=processor.state,
            entries_processed=F("entries_processed") + result.processed,
            entries_skipped=F("entries_skipped") + result.skipped,
            duplicates_skipped=F("duplicates_skipped") + result.duplicates,
            **(
                {"last_entry_occurred_at": result.last_occurred_at}
                if result.last_occurred_at
                else {}
            ),
        )
    return result


def _state_locked(processor: Processor) -> tuple[int, int | None]:
    """The processor's state row, locked for this transaction: its key and committed offset.

    On PostgreSQL the same statement lets this transaction's commit return
    before it is flushed to disk. A database crash can then lose the last few
    batches, but only whole (figures and offset together), and the processor
    takes those entries again from the log. What such a batch published, the
    fraud screen's verdict, may have gone out before the crash: taken again,
    the order gets a second verdict, and payments keeps the first.
    """
    if connection.vendor != "postgresql":
        state = ProcessorState.objects.select_for_update().get(
            processor=processor.name, slot=processor.slot
        )
        return state.pk, state.offset
    with connection.cursor() as cursor:
        cursor.execute(_state_locked_sql(), [processor.name, processor.slot])
        row = cursor.fetchone()
    if row is None:
        raise ProcessorState.DoesNotExist(f"{processor.name} ({processor.slot}) has no state")
    return row[0], row[1]


@functools.cache
def _state_locked_sql() -> str:
    table, column = quoted_names(ProcessorState)
    return (
        f"SELECT {column['id']}, {column['offset']} FROM {table}, {ASYNC_COMMIT} "
        f"WHERE {column['processor']} = %s AND {column['slot']} = %s FOR UPDATE OF {table}"
    )


def batch_commit_one_by_one(
    processor_factory: Callable[[], Processor],
    *,
    expected_offset: int | None,
    entries: list[LogEntry],
) -> tuple[int | None, Processor]:
    """After a batch failed: each entry on its own, the one that fails recorded and skipped.

    A processor's own bug on one entry must not stop it for good.
    """
    offset = expected_offset
    processor = processor_factory()
    for entry in entries:
        try:
            batch_commit(processor, expected_offset=offset, entries=[entry])
        except Fenced:
            raise
        except Exception as exc:
            logger.error(
                "%s could not take entry %s; skipped: %s", processor.name, entry.offset, exc
            )
            processor = processor_factory()
            _skip_failed(processor, offset, entry, exc)
        offset = entry.offset
    return offset, processor


def _skip_failed(processor: Processor, expected_offset, entry: LogEntry, exc: Exception) -> None:
    with transaction.atomic():
        state = ProcessorState.objects.select_for_update().get(
            processor=processor.name, slot=processor.slot
        )
        if state.offset != expected_offset:
            raise Fenced(f"{processor.name} moved on while an entry was skipped")
        SkippedEntry.objects.create(
            processor=processor.name,
            slot=processor.slot,
            offset=entry.offset,
            message_id=entry.envelope.message_id if entry.envelope else None,
            message_type=_text(entry.envelope.type) if entry.envelope else "",
            reason="processor_error",
            error=_text("".join(traceback.format_exception_only(exc)).strip()[:2000]),
            raw=_text(traceback.format_exc()[-10000:]),
        )
        ProcessorState.objects.filter(pk=state.pk).update(
            offset=entry.offset, entries_skipped=F("entries_skipped") + 1
        )


def _items(processor: Processor, entries: list[LogEntry], result: BatchResult) -> list[Item]:
    items = []
    for entry in entries:
        envelope = entry.envelope
        if envelope is None:
            _skip(processor, result, entry, "malformed", entry.error)
            continue
        result.last_occurred_at = envelope.occurred_at
        if not processor.wants(envelope.type):
            try:
                registry.get(envelope.type, envelope.version)
            except MessageError as exc:
                _skip(processor, result, entry, exc.reason, str(exc))
            continue
        try:
            message = registry.read(envelope)
        except MessageError as exc:
            _skip(processor, result, entry, exc.reason, str(exc))
            continue
        items.append(Item(entry.offset, envelope, message))
    return items


def _unseen(processor: Processor, items: list[Item], result: BatchResult) -> list[Item]:
    """The items not taken before: a copy appended again by a relay resend is dropped."""
    if not items:
        return items
    first: dict[UUID, Item] = {}
    for item in items:
        first.setdefault(item.envelope.message_id, item)
    fresh_ids = _remember(processor, list(first.values()))
    fresh = [item for message_id, item in first.items() if message_id in fresh_ids]
    result.duplicates += len(items) - len(fresh)
    result.processed += len(fresh)
    return fresh


def _remember(processor: Processor, items: list[Item]) -> set[UUID]:
    """Record the items' message ids as seen; returns those that were not seen before."""
    if connection.vendor == "postgresql":
        # One statement for the whole batch: the ids that went in are the new ones.
        with connection.cursor() as cursor:
            cursor.execute(
                _remember_sql(),
                [
                    processor.name,
                    processor.slot,
                    [item.envelope.message_id for item in items],
                    [item.envelope.occurred_at for item in items],
                ],
            )
            return {row[0] for row in cursor.fetchall()}
    ids = [item.envelope.message_id for item in items]
    seen = set(
        SeenMessage.objects.filter(
            processor=processor.name, slot=processor.slot, message_id__in=ids
        ).values_list("message_id", flat=True)
    )
    fresh = [item for item in items if item.envelope.message_id not in seen]
    SeenMessage.objects.bulk_create(
        SeenMessage(
            processor=processor.name,
            slot=processor.slot,
            message_id=item.envelope.message_id,
            occurred_at=item.envelope.occurred_at,
        )
        for item in fresh
    )
    return {item.envelope.message_id for item in fresh}


@functools.cache
def _remember_sql() -> str:
    table, column = quoted_names(SeenMessage)
    return (
        f"INSERT INTO {table} "
        f"({column['processor']}, {column['slot']}, {column['message_id']}, "
        f"{column['occurred_at']}) "
        "SELECT %s, %s, ids.message_id, ids.occurred_at "
        "FROM unnest(%s::uuid[], %s::timestamptz[]) AS ids(message_id, occurred_at) "
        f"ON CONFLICT ({column['processor']}, {column['slot']}, {column['message_id']}) "
        f"DO NOTHING RETURNING {column['message_id']}"
    )


def _skip(processor: Processor, result: BatchResult, entry: LogEntry, reason: str, error: str):
    result.skipped += 1
    result.skipped_entries.append(
        SkippedEntry(
            processor=processor.name,
            slot=processor.slot,
            offset=entry.offset,
            message_id=entry.envelope.message_id if entry.envelope else None,
            message_type=_text(entry.envelope.type) if entry.envelope else "",
            reason=reason,
            error=_text(error[:2000]),
            raw=_text(entry.raw),
        )
    )


def _text(value: str) -> str:
    # A body published straight to the stream may hold NUL bytes, which a
    # PostgreSQL text column refuses (and the whole batch with it): keep them
    # visible as \0, as the dead letters do.
    return value.replace("\x00", "\\0")

"""A stream processor, and how one batch of log entries is taken into its projection.

A processor reads the messages it names from the log and keeps a projection
(its tables, each row in a ``slot``). ``batch_commit`` takes a batch in one
database transaction: the projection's changes, the entries it skipped, the
message ids it has seen and its new offset commit together, so a processor
killed at any moment resumes from its last commit and counts nothing twice.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar
from uuid import UUID

from django.db import models, transaction
from django.db.models import F

from messaging.context import handling
from messaging.eventlog import LogEntry
from messaging.messages import Envelope, Event, Message, MessageError, registry
from messaging.publishing import publish

from .models import ProcessorState, SeenMessage, SkippedEntry, Slot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """An entry the processor takes: its offset, envelope and payload."""

    offset: int
    envelope: Envelope
    message: Message


class Processor:
    """Base of the processors: subclasses name their messages and tables and ``process`` them.

    ``process`` runs inside the batch's transaction and may only write its own
    tables, in its own ``slot``. ``emit`` publishes an event from the
    processor (through the outbox, in the same transaction); during a replay
    it does nothing, so that a replay has no side effect.
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

    def emit(self, event: Event, *, cause: Envelope) -> None:
        if self.replaying:
            return
        with handling(cause):
            publish(event)

    def wants(self, message_type: str) -> bool:
        return any(cls.message_type == message_type for cls in self.message_classes)


class Fenced(Exception):
    """Another process moved this processor's offset: this one reads from there again."""


@dataclass
class BatchResult:
    offset: int
    processed: int = 0
    skipped: int = 0
    duplicates: int = 0
    last_occurred_at: object = None
    skipped_entries: list[SkippedEntry] = field(default_factory=list)


def batch_commit(
    processor: Processor, *, expected_offset: int | None, entries: list[LogEntry]
) -> BatchResult:
    """Take ``entries`` into the processor's projection and move its offset past them, atomically.

    Raises Fenced, changing nothing, when the committed offset is no longer
    ``expected_offset`` (another process took these entries, or a replay swapped).
    """
    result = BatchResult(offset=entries[-1].offset)
    with transaction.atomic():
        state = ProcessorState.objects.select_for_update().get(
            processor=processor.name, slot=processor.slot
        )
        if state.offset != expected_offset:
            raise Fenced(
                f"{processor.name} ({processor.slot}) is at {state.offset}, not {expected_offset}"
            )
        items = _items(processor, entries, result)
        items = _unseen(processor, items, result)
        if items:
            processor.process(items)
        SkippedEntry.objects.bulk_create(result.skipped_entries)
        ProcessorState.objects.filter(pk=state.pk).update(
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
            logger.exception("%s could not take entry %s; skipped", processor.name, entry.offset)
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
    ids = {item.envelope.message_id for item in items}
    seen: set[UUID] = set(
        SeenMessage.objects.filter(
            processor=processor.name, slot=processor.slot, message_id__in=ids
        ).values_list("message_id", flat=True)
    )
    fresh = []
    for item in items:
        if item.envelope.message_id in seen:
            result.duplicates += 1
            continue
        seen.add(item.envelope.message_id)
        fresh.append(item)
    SeenMessage.objects.bulk_create(
        SeenMessage(
            processor=processor.name,
            slot=processor.slot,
            message_id=item.envelope.message_id,
            occurred_at=item.envelope.occurred_at,
        )
        for item in fresh
    )
    result.processed += len(fresh)
    return fresh


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

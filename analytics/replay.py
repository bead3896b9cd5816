"""Replaying the log into a projection's shadow, comparing it with the live one, swapping them.

A replay runs the processor from a chosen start into the ``shadow`` slot of
its tables, with side effects off (``Processor.emit`` publishes nothing),
until it has reached the live processor's offset; then both slots are
compared table by table (row count, and a checksum of every row's values).
The live processor may go on meanwhile: the replay follows it until both
stand at the same offset.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.db import models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.eventlog import EventLog, Start, event_log

from .models import ProcessorState, SeenMessage, SkippedEntry, Slot
from .processing import Processor
from .runner import Progress, Runner

# Rounds of catching up with a live processor that keeps moving.
MAX_CHASES = 20


class ReplayError(ValueError):
    """A replay asked for what the log cannot give; nothing was changed."""


def replay_start(text: str, *, log: EventLog | None = None) -> Start:
    """``first``, an offset the log holds, or an ISO time not in the future."""
    log = log or event_log()
    text = text.strip()
    if text == "first":
        return "first"
    if re.fullmatch(r"-?[0-9]+", text):
        offset = int(text)
        first, head = log.first(), log.head()
        if offset < 0:
            raise ReplayError(f"--from {text}: an offset is not negative")
        if head is None:
            raise ReplayError(f"--from {text}: the event log is empty")
        if offset > head:
            raise ReplayError(f"--from {text}: the log's last offset is {head}")
        if first is not None and offset < first:
            raise ReplayError(
                f"--from {text}: the log keeps offsets from {first} on (older ones have expired)"
            )
        return offset
    moment = _moment(text)
    if moment is None:
        raise ReplayError(
            f"--from {text!r}: give first, an offset, or an ISO time such as 2026-12-01T09:30:00Z"
        )
    if moment > timezone.now():
        raise ReplayError(f"--from {text}: that time is in the future")
    return moment


def _moment(text: str) -> datetime | None:
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


@dataclass
class TableDiff:
    table: str
    live_rows: int
    shadow_rows: int
    live_checksum: str
    shadow_checksum: str
    only_live: list[str] = field(default_factory=list)
    only_shadow: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return self.live_rows == self.shadow_rows and self.live_checksum == self.shadow_checksum


@dataclass
class ReplayResult:
    offset: int | None
    entries: int
    tables: list[TableDiff]

    @property
    def same(self) -> bool:
        return all(table.same for table in self.tables)


def projection_replay(
    processor_class: type[Processor],
    *,
    start: Start,
    on_progress: Callable[[Progress], None] | None = None,
    log: EventLog | None = None,
) -> ReplayResult:
    """Rebuild the shadow from ``start`` up to the live processor's offset, and compare."""
    log = log or event_log()
    projection_shadow_reset(processor_class)
    entries = 0
    for _ in range(MAX_CHASES):
        target = _live_offset(processor_class, log)
        if target is not None and target != _shadow_offset(processor_class):
            runner = Runner(
                processor_class,
                stop=threading.Event(),
                slot=Slot.SHADOW,
                replaying=True,
                start=start,
                until=target,
                log=log,
                on_batch=on_progress,
            )
            runner.run()
            entries += runner.processed
        tables = projection_compare(processor_class)
        if _live_offset(processor_class, log) == target:
            return ReplayResult(offset=target, entries=entries, tables=tables)
    return ReplayResult(offset=target, entries=entries, tables=tables)


def _live_offset(processor_class: type[Processor], log: EventLog) -> int | None:
    state = ProcessorState.objects.filter(processor=processor_class.name, slot=Slot.LIVE).first()
    if state is not None and state.offset is not None:
        return state.offset
    return log.head()


def _shadow_offset(processor_class: type[Processor]) -> int | None:
    state = ProcessorState.objects.filter(processor=processor_class.name, slot=Slot.SHADOW).first()
    return state.offset if state else None


def _own(processor_class: type[Processor]) -> list[tuple[type[models.Model], dict]]:
    """Every table a processor's slot holds rows in, with the filter that picks its rows."""
    mine = {"processor": processor_class.name}
    return [
        *((model, {}) for model in processor_class.models),
        (SeenMessage, mine),
        (SkippedEntry, mine),
    ]


def projection_shadow_reset(processor_class: type[Processor]) -> None:
    with transaction.atomic():
        for model, where in _own(processor_class):
            model._default_manager.filter(slot=Slot.SHADOW, **where).delete()
        ProcessorState.objects.filter(processor=processor_class.name, slot=Slot.SHADOW).delete()


def projection_compare(processor_class: type[Processor]) -> list[TableDiff]:
    return [_compare(model) for model in processor_class.models]


def _compare(model: type[models.Model]) -> TableDiff:
    columns = [f.attname for f in model._meta.concrete_fields if f.attname not in ("id", "slot")]
    rows = {
        slot: Counter(
            _row_text(values)
            for values in model._default_manager.filter(slot=slot).values_list(*columns).iterator()
        )
        for slot in (Slot.LIVE, Slot.SHADOW)
    }
    live, shadow = rows[Slot.LIVE], rows[Slot.SHADOW]
    return TableDiff(
        table=model._meta.db_table,
        live_rows=sum(live.values()),
        shadow_rows=sum(shadow.values()),
        live_checksum=_checksum(live),
        shadow_checksum=_checksum(shadow),
        only_live=sorted((live - shadow).elements())[:10],
        only_shadow=sorted((shadow - live).elements())[:10],
    )


def _row_text(values: tuple) -> str:
    return " | ".join(_value_text(value) for value in values)


def _value_text(value) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return repr(sorted(value.items()))
    return str(value)


def _checksum(rows: Counter) -> str:
    digest = hashlib.sha256()
    for text in sorted(rows.elements()):
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def projection_swap(processor_class: type[Processor]) -> None:
    """Make the shadow the live projection, offset and all, in one transaction.

    A live processor running meanwhile reads on from the new offset: its next
    commit finds the offset moved and starts again from there.
    """
    name = processor_class.name
    with transaction.atomic():
        shadow = (
            ProcessorState.objects.select_for_update()
            .filter(processor=name, slot=Slot.SHADOW)
            .first()
        )
        if shadow is None:
            raise ReplayError(f"{name} has no shadow to swap in: replay it first")
        live, _ = ProcessorState.objects.select_for_update().get_or_create(
            processor=name, slot=Slot.LIVE
        )
        for model, where in _own(processor_class):
            model._default_manager.filter(slot=Slot.LIVE, **where).delete()
            model._default_manager.filter(slot=Slot.SHADOW, **where).update(slot=Slot.LIVE)
        for attribute in (
            "offset",
            "state",
            "entries_processed",
            "entries_skipped",
            "duplicates_skipped",
            "last_entry_occurred_at",
        ):
            setattr(live, attribute, getattr(shadow, attribute))
        live.save()
        shadow.delete()

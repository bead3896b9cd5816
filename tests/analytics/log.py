"""The event log as the analytics unit tests write and read it: the outbox table, no broker.

``logged`` writes an event into the outbox as ``publish`` does, but at the
event time the test names; ``take`` runs a processor over the table log from
its committed offset, in batches, as the runner would (``batch_commit``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from analytics.models import MinuteFigure, ProcessorState, Slot
from analytics.processing import BatchResult, Processor, batch_commit
from messaging.eventlog import LogEntry, event_log
from messaging.messages import Envelope, Message
from messaging.models import OutboxMessage


def envelope_at(
    message: Message, *, at: datetime | None = None, cause: Envelope | None = None
) -> Envelope:
    """The envelope ``publish`` would give ``message``, had it been published at ``at``."""
    message_id = uuid.uuid4()
    order_id = getattr(message, "order_id", None)
    return Envelope(
        message_id=message_id,
        kind=message.kind,
        type=message.message_type,
        version=message.message_version,
        occurred_at=at or timezone.now(),
        correlation_id=str(order_id or message_id),
        causation_id=cause.message_id if cause else None,
        payload=message.model_dump(mode="json"),
    )


def logged(*messages: Message, at: datetime | None = None) -> list[Envelope]:
    """Write the messages into the outbox (the database backend's log), in order."""
    envelopes = [envelope_at(message, at=at) for message in messages]
    for envelope in envelopes:
        OutboxMessage.from_envelope(envelope).save(force_insert=True)
    return envelopes


def entry(envelope: Envelope, offset: int) -> LogEntry:
    """A log entry holding ``envelope``, as a reader gives it."""
    return LogEntry.from_wire(offset, json.loads(json.dumps(envelope.to_wire())))


def state_of(processor_class: type[Processor], slot: str = Slot.LIVE) -> ProcessorState:
    state, _ = ProcessorState.objects.get_or_create(processor=processor_class.name, slot=slot)
    return state


def take(
    processor_class: type[Processor],
    *,
    batch_size: int = 500,
    slot: str = Slot.LIVE,
    replaying: bool = False,
) -> list[BatchResult]:
    """Take what the log holds past the processor's committed offset, ``batch_size`` at a time."""
    state = state_of(processor_class, slot)
    reader = event_log().reader(state.offset + 1 if state.offset is not None else "first")
    results = []
    while batch := reader.read(max_entries=batch_size, timeout=0):
        state = state_of(processor_class, slot)
        processor = processor_class(slot=slot, replaying=replaying, state=state.state)
        results.append(batch_commit(processor, expected_offset=state.offset, entries=batch))
    return results


def figures(slot: str = Slot.LIVE) -> dict[tuple[datetime, str, str], Decimal]:
    """The aggregates' figures: (minute, metric, key) -> value."""
    return {
        (row.minute, row.metric, row.key): row.value
        for row in MinuteFigure.objects.filter(slot=slot)
    }


def totals(slot: str = Slot.LIVE) -> dict[tuple[str, str], Decimal]:
    """The figures added up over every minute: (metric, key) -> value."""
    summed: dict[tuple[str, str], Decimal] = {}
    for (_, metric, key), value in figures(slot).items():
        summed[(metric, key)] = summed.get((metric, key), Decimal(0)) + value
    return summed

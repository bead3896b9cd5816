"""One batch of log entries into a projection: all of it with the offset, or none of it."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.aggregates import Aggregates, minute_of
from analytics.models import MinuteFigure, OpenOrder, ProcessorState, SeenMessage, SkippedEntry
from analytics.processing import Fenced, batch_commit, batch_commit_one_by_one
from messaging.eventlog import LogEntry
from tests.analytics.factories import PaymentProcessedFactory
from tests.analytics.log import entry, envelope_at, figures, state_of
from tests.support.order_messages import OrderPlacedFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table_log")]


class Failing(Aggregates):
    """The aggregates with a bug that shows on one order's messages only."""

    failing_order = None

    def _take(self, item) -> None:
        super()._take(item)
        if getattr(item.message, "order_id", None) == self.failing_order:
            raise ZeroDivisionError(f"the bug, on {item.envelope.type}")


@pytest.fixture
def moment():
    return timezone.now() - timedelta(hours=1)


def payments(count: int, *, at, first_offset: int = 1) -> list[LogEntry]:
    """Entries of ``count`` payments of 1.00 each, at consecutive offsets."""
    return [
        entry(envelope_at(PaymentProcessedFactory(amount=Decimal("1.00")), at=at), first_offset + n)
        for n in range(count)
    ]


def unchanged_since(state: ProcessorState) -> bool:
    """Nothing of the batch stayed: no figure, no seen id, no skipped entry, the same offset."""
    now = ProcessorState.objects.get(pk=state.pk)
    return (
        not MinuteFigure.objects.exists()
        and not OpenOrder.objects.exists()
        and not SeenMessage.objects.exists()
        and not SkippedEntry.objects.exists()
        and (now.offset, now.state, now.entries_processed) == (state.offset, state.state, 0)
    )


def test_the_projection_the_seen_ids_and_the_offset_commit_together(moment):
    # given a processor that has taken nothing
    state_of(Aggregates)
    batch = payments(3, at=moment, first_offset=10)
    # when it takes a batch
    result = batch_commit(Aggregates(), expected_offset=None, entries=batch)
    # then its figures, the ids it saw, its offset and its state are committed
    assert figures() == {
        (minute_of(moment), "payments_succeeded", ""): 3,
        (minute_of(moment), "money_captured", "EUR"): Decimal("3.00"),
    }
    assert set(SeenMessage.objects.values_list("message_id", flat=True)) == {
        e.envelope.message_id for e in batch
    }
    state = ProcessorState.objects.get(processor="aggregates")
    assert result.offset == state.offset == 12
    assert state.state == {"watermark": moment.isoformat()}
    assert (state.entries_processed, state.entries_skipped, state.duplicates_skipped) == (3, 0, 0)
    assert state.last_entry_occurred_at == moment


def test_a_batch_the_processor_fails_on_leaves_nothing_behind(moment):
    # given a processor at offset 4 whose bug shows on one order
    state = state_of(Aggregates)
    watermark = (moment - timedelta(minutes=1)).isoformat()
    ProcessorState.objects.filter(pk=state.pk).update(offset=4, state={"watermark": watermark})
    state.refresh_from_db()
    placed = OrderPlacedFactory()
    Failing.failing_order = placed.order_id
    malformed = LogEntry.from_task_body(6, b"not a task message")
    batch = [*payments(1, at=moment, first_offset=5), malformed]
    batch.append(entry(envelope_at(placed, at=moment), 7))
    # when it takes a batch with that order in it
    with pytest.raises(ZeroDivisionError):
        batch_commit(Failing(state=state.state), expected_offset=4, entries=batch)
    # then neither the figures before it, nor the skipped entry, nor the offset stayed
    assert unchanged_since(state)


def test_a_processor_whose_offset_moved_is_fenced_and_changes_nothing(moment):
    # given another process took the log up to offset 8 meanwhile
    state = state_of(Aggregates)
    ProcessorState.objects.filter(pk=state.pk).update(offset=8)
    state.refresh_from_db()
    # when this one commits a batch it read after offset 5
    with pytest.raises(Fenced, match="aggregates \\(live\\) is at 8, not 5"):
        batch_commit(
            Aggregates(), expected_offset=5, entries=payments(2, at=moment, first_offset=6)
        )
    # then nothing of it is taken
    assert unchanged_since(state)


def test_one_by_one_the_entry_the_processor_fails_on_is_skipped_and_the_others_taken(moment):
    # given a batch of five with the processor's bug on the third
    state_of(Aggregates)
    placed = OrderPlacedFactory()
    Failing.failing_order = placed.order_id
    batch = payments(2, at=moment, first_offset=1)
    batch.append(entry(envelope_at(placed, at=moment + timedelta(minutes=30)), 3))
    batch.extend(payments(2, at=moment, first_offset=4))
    # when the batch is taken entry by entry
    offset, _ = batch_commit_one_by_one(
        lambda: Failing(state=state_of(Aggregates).state), expected_offset=None, entries=batch
    )
    # then the four others count, and the third is recorded with its offset and error
    assert figures()[(minute_of(moment), "payments_succeeded", "")] == 4
    assert not OpenOrder.objects.exists()
    [skipped] = SkippedEntry.objects.all()
    assert (skipped.offset, skipped.reason, skipped.message_type) == (
        3,
        "processor_error",
        "OrderPlaced",
    )
    assert skipped.message_id == batch[2].envelope.message_id
    assert skipped.error == "ZeroDivisionError: the bug, on OrderPlaced"
    state = ProcessorState.objects.get(processor="aggregates")
    assert offset == state.offset == 5
    assert (state.entries_processed, state.entries_skipped) == (4, 1)
    # and the failed entry did not move the watermark (its transaction rolled back)
    assert state.state == {"watermark": moment.isoformat()}


def wire(message_type: str = "OrderPlaced", *, version: int = 1, payload=None, **more) -> dict:
    data = envelope_at(OrderPlacedFactory()).to_wire()
    data.update(type=message_type, version=version, **more)
    if payload is not None:
        data["payload"] = payload
    return data


@pytest.mark.parametrize(
    ("log_entry", "reason", "error"),
    [
        (
            LogEntry.from_task_body(2, b"not json"),
            "malformed",
            "not a task message with an envelope",
        ),
        (
            LogEntry.from_task_body(2, json.dumps([[], {"envelope": {"type": "X"}}, {}])),
            "malformed",
            "envelope is invalid",
        ),
        (
            LogEntry.from_wire(2, wire("OrderShipped")),
            "unknown_message",
            "unknown message type 'OrderShipped' version 1",
        ),
        (
            LogEntry.from_wire(2, wire(version=9)),
            "unknown_message",
            "unknown message type 'OrderPlaced' version 9 (known versions: [1])",
        ),
        (
            LogEntry.from_wire(2, wire(payload={"order_id": "not a uuid"})),
            "invalid_payload",
            "OrderPlaced v1 payload is invalid: order_id: Input should be a valid UUID",
        ),
    ],
    ids=["not json", "no envelope", "unknown type", "unknown version", "invalid payload"],
)
def test_an_entry_that_cannot_be_read_is_recorded_with_its_offset_and_reason_and_skipped(
    moment, log_entry, reason, error
):
    # given an unreadable entry between two payments
    state_of(Aggregates)
    before, after = payments(1, at=moment, first_offset=1), payments(1, at=moment, first_offset=3)
    # when the batch is taken
    result = batch_commit(Aggregates(), expected_offset=None, entries=[*before, log_entry, *after])
    # then the entry is recorded, and the payments on either side of it count
    [skipped] = SkippedEntry.objects.all()
    assert (skipped.processor, skipped.offset, skipped.reason) == ("aggregates", 2, reason)
    assert error in skipped.error
    assert skipped.raw == log_entry.raw
    assert figures()[(minute_of(moment), "payments_succeeded", "")] == 2
    state = ProcessorState.objects.get(processor="aggregates")
    assert result.offset == state.offset == 3
    assert (state.entries_processed, state.entries_skipped) == (2, 1)


def test_an_entry_with_nul_bytes_is_recorded_with_them_shown_as_backslash_zero(moment):
    # given a body with NUL bytes (PostgreSQL keeps none in text) between two payments
    state_of(Aggregates)
    poison = LogEntry.from_task_body(2, b"\x00binary\x00body")
    batch = [
        *payments(1, at=moment, first_offset=1),
        poison,
        *payments(1, at=moment, first_offset=3),
    ]
    # when the batch is taken
    batch_commit(Aggregates(), expected_offset=None, entries=batch)
    # then the entry is recorded as malformed, the payments count
    [skipped] = SkippedEntry.objects.all()
    assert (skipped.offset, skipped.reason, skipped.raw) == (2, "malformed", "\\0binary\\0body")
    assert figures()[(minute_of(moment), "payments_succeeded", "")] == 2

"""The runner: follows the log from the committed offset, in batches, past its own failures."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.aggregates import Aggregates
from analytics.models import ProcessorState, SkippedEntry
from analytics.runner import Runner
from messaging.eventlog import event_log
from tests.analytics.factories import PaymentProcessedFactory
from tests.analytics.log import logged, state_of, totals
from tests.support.order_messages import OrderPlacedFactory

# The runner closes its connection when it stops: transactional tests.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("table_log")]


class Failing(Aggregates):
    """The aggregates with a bug that shows on one order's placing only."""

    failing_order = None

    def _take(self, item) -> None:
        super()._take(item)
        if getattr(item.message, "order_id", None) == self.failing_order:
            raise ZeroDivisionError("the bug")


def run_until_head(processor_class, **options) -> Runner:
    runner = Runner(
        processor_class,
        stop=threading.Event(),
        until=event_log().head(),
        log=event_log(),
        **options,
    )
    runner.run()
    return runner


def test_the_runner_takes_the_log_from_its_committed_offset_in_batches(settings):
    # given a log of 7 payments, the first 2 taken already
    settings.ANALYTICS_BATCH_SIZE = 2
    at = timezone.now() - timedelta(minutes=30)
    logged(*(PaymentProcessedFactory(amount=Decimal("1.00")) for _ in range(7)), at=at)
    first = event_log().first()
    ProcessorState.objects.create(processor="aggregates", slot="live", offset=first + 1)
    # when the runner runs up to the head
    batches = []
    run_until_head(Aggregates, on_batch=batches.append)
    # then it took the 5 others, 2 at a time, and nothing twice
    assert totals()[("payments_succeeded", "")] == 5
    assert [batch.offset for batch in batches] == [first + 3, first + 5, first + 6]
    state = state_of(Aggregates)
    assert (state.offset, state.entries_processed) == (first + 6, 5)


def test_a_batch_the_processor_fails_on_is_taken_one_by_one_and_the_runner_goes_on():
    # given a log in which the processor fails on one order's placing
    at = timezone.now() - timedelta(minutes=30)
    placed = OrderPlacedFactory()
    Failing.failing_order = placed.order_id
    logged(PaymentProcessedFactory(), placed, PaymentProcessedFactory(), at=at)
    logged(PaymentProcessedFactory(), at=at + timedelta(seconds=1))
    # when the runner runs up to the head
    runner = run_until_head(Failing)
    # then every other entry counts, the failing one is recorded, and it reached the head
    assert runner.finished
    assert totals()[("payments_succeeded", "")] == 3
    assert ("orders_placed", "") not in totals()
    [skipped] = SkippedEntry.objects.all()
    assert (skipped.reason, skipped.message_type) == ("processor_error", "OrderPlaced")
    state = state_of(Aggregates)
    assert state.offset == event_log().head()
    assert (state.entries_processed, state.entries_skipped) == (3, 1)


def test_the_first_heartbeat_records_the_head_and_how_far_behind_the_processor_was():
    # given a log of 3 entries, none taken
    logged(*(PaymentProcessedFactory() for _ in range(3)))
    head = event_log().head()
    # when a runner takes them
    run_until_head(Aggregates)
    # then its heartbeat, before the first batch, said where the log ends and that 3 waited
    state = state_of(Aggregates)
    assert (state.head_offset, state.lag_entries) == (head, 3)
    assert state.heartbeat_at is not None

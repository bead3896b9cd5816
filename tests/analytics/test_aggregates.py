"""The aggregates: each figure from its events, in the minute the event occurred, once."""

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.aggregates import DURATION_BOUNDS, Aggregates, duration_bucket, minute_of
from analytics.models import OpenOrder, ProcessorState
from analytics.processing import batch_commit
from tests.analytics.factories import (
    InventoryReservationFailedFactory,
    PaymentFailedFactory,
    PaymentProcessedFactory,
    PaymentRefundedFactory,
    ShortLineFactory,
)
from tests.analytics.log import entry, envelope_at, figures, logged, state_of, take, totals
from tests.support.order_messages import (
    OrderCancelledFactory,
    OrderCompletedFactory,
    OrderPlacedFactory,
    PlacedLineFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table_log")]


@pytest.fixture
def minute():
    """A minute an hour ago: every event of a test occurs in it or after it, none now."""
    return minute_of(timezone.now() - timedelta(hours=1))


@pytest.fixture(autouse=True)
def lateness(settings):
    settings.ANALYTICS_ALLOWED_LATENESS = 300
    return timedelta(seconds=300)


def test_orders_placed_completed_and_cancelled_are_counted_by_reason(minute):
    # given three orders placed, one completed, two cancelled for different reasons
    placed = [OrderPlacedFactory() for _ in range(3)]
    logged(*placed, at=minute + timedelta(seconds=5))
    logged(OrderCompletedFactory(order_id=placed[0].order_id), at=minute + timedelta(seconds=10))
    logged(
        OrderCancelledFactory(order_id=placed[1].order_id, reason_code="payment_failed"),
        OrderCancelledFactory(order_id=placed[2].order_id, reason_code="out_of_stock"),
        at=minute + timedelta(seconds=20),
    )
    # when the aggregates take the log
    take(Aggregates)
    # then each figure is in the events' minute
    found = figures()
    assert found[(minute, "orders_placed", "")] == 3
    assert found[(minute, "orders_completed", "")] == 1
    assert found[(minute, "orders_cancelled", "payment_failed")] == 1
    assert found[(minute, "orders_cancelled", "out_of_stock")] == 1
    # and no order is open any more
    assert not OpenOrder.objects.exists()


def test_money_captured_and_refunded_add_up_per_currency(minute):
    logged(
        PaymentProcessedFactory(amount=Decimal("12.50"), currency="EUR"),
        PaymentProcessedFactory(amount=Decimal("7.25"), currency="EUR"),
        PaymentProcessedFactory(amount=Decimal("30.00"), currency="GBP"),
        PaymentRefundedFactory(amount=Decimal("7.25"), currency="EUR"),
        at=minute + timedelta(seconds=1),
    )
    take(Aggregates)
    found = figures()
    assert found[(minute, "money_captured", "EUR")] == Decimal("19.75")
    assert found[(minute, "money_captured", "GBP")] == Decimal("30.00")
    assert found[(minute, "money_refunded", "EUR")] == Decimal("7.25")
    assert (minute, "money_refunded", "GBP") not in found
    assert found[(minute, "payments_succeeded", "")] == 3


def test_failed_payments_are_counted_by_reason_and_only_the_issuers_refusals_as_declines(minute):
    logged(
        PaymentFailedFactory(reason_code="card_declined"),
        PaymentFailedFactory(reason_code="insufficient_funds"),
        PaymentFailedFactory(reason_code="gateway_error"),
        PaymentFailedFactory(reason_code="gateway_error"),
        at=minute,
    )
    take(Aggregates)
    found = figures()
    assert found[(minute, "payments_failed", "card_declined")] == 1
    assert found[(minute, "payments_failed", "insufficient_funds")] == 1
    assert found[(minute, "payments_failed", "gateway_error")] == 2
    assert found[(minute, "payments_declined", "")] == 2
    assert (minute, "payments_succeeded", "") not in found


def test_stock_outs_are_counted_per_sku_short(minute):
    logged(
        InventoryReservationFailedFactory(
            short=[ShortLineFactory(sku="MUG"), ShortLineFactory(sku="PEN")]
        ),
        InventoryReservationFailedFactory(short=[ShortLineFactory(sku="MUG")]),
        at=minute,
    )
    take(Aggregates)
    found = figures()
    assert found[(minute, "stock_outs", "MUG")] == 2
    assert found[(minute, "stock_outs", "PEN")] == 1


def test_events_the_aggregates_do_not_count_change_no_figure(minute):
    # given only events no figure is made of (an order screened, a product updated)
    from analytics.events import OrderScreened
    from inventory.events import ProductUpdated

    logged(
        OrderScreened(order_id=uuid.uuid4(), verdict="cleared"),
        ProductUpdated(sku="MUG", name="Mug", price=Decimal(1), currency="EUR", available=1),
        at=minute,
    )
    take(Aggregates)
    # then nothing is counted, and the offset moved past them
    assert figures() == {}
    state = state_of(Aggregates)
    assert state.offset is not None and state.entries_processed == 0


@pytest.mark.parametrize(("batch_size", "batches"), [(100, 1), (1, 2)], ids=["one", "two"])
def test_a_completed_order_counts_its_units_and_its_time_to_complete(minute, batch_size, batches):
    # given an order of 2 mugs and 3 pens placed, then completed 42.5 seconds later
    order = OrderPlacedFactory(
        lines=[PlacedLineFactory(sku="MUG", quantity=2), PlacedLineFactory(sku="PEN", quantity=3)]
    )
    placed_at = minute + timedelta(seconds=30)
    completed_at = placed_at + timedelta(seconds=42.5)
    logged(order, at=placed_at)
    logged(OrderCompletedFactory(order_id=order.order_id), at=completed_at)
    # when the aggregates take them in one batch, or one per batch
    results = take(Aggregates, batch_size=batch_size)
    assert len(results) == batches
    # then the completion counts in the minute it completed in, with its units
    done = minute_of(completed_at)
    assert done != minute
    found = figures()
    assert found[(done, "orders_completed", "")] == 1
    assert found[(done, "units_sold", "MUG")] == 2
    assert found[(done, "units_sold", "PEN")] == 3
    assert found[(done, "completion_seconds", duration_bucket(42.5))] == 1
    assert found[(done, "completion_seconds_sum", "")] == Decimal("42.50")
    assert found[(minute, "orders_placed", "")] == 1
    assert not OpenOrder.objects.exists()


def test_an_order_stays_open_between_batches_until_it_ends(minute):
    order = OrderPlacedFactory(lines=[PlacedLineFactory(sku="MUG", quantity=4)])
    logged(order, at=minute)
    take(Aggregates)
    open_order = OpenOrder.objects.get(order_id=order.order_id)
    assert open_order.units == {"MUG": 4} and open_order.placed_at == minute

    logged(OrderCancelledFactory(order_id=order.order_id), at=minute + timedelta(seconds=3))
    take(Aggregates)
    assert not OpenOrder.objects.exists()
    assert ("units_sold", "MUG") not in totals()


def test_a_completion_whose_placing_the_log_does_not_hold_counts_no_time_or_units(minute):
    logged(OrderCompletedFactory(), at=minute)
    take(Aggregates)
    assert totals() == {("orders_completed", ""): 1}


def test_events_count_in_the_minute_they_occurred_not_the_minute_they_are_read(minute):
    # given events in three minutes, all read at once an hour later
    for offset_minutes in (0, 0, 1, 7):
        logged(OrderPlacedFactory(), at=minute + timedelta(minutes=offset_minutes, seconds=59))
    # when they are read now
    take(Aggregates)
    # then each counts in its own minute, none in the current one
    placed = {
        moment: value
        for (moment, metric, _), value in figures().items()
        if metric == "orders_placed"
    }
    assert placed == {minute: 2, minute + timedelta(minutes=1): 1, minute + timedelta(minutes=7): 1}
    assert not any(moment >= minute_of(timezone.now()) for moment, _, _ in figures())


def test_an_entry_for_a_minute_already_final_counts_there_and_as_late(minute, lateness):
    # given the watermark at exactly the end of `minute` plus the allowed lateness
    watermark = minute + timedelta(minutes=1) + lateness
    logged(OrderPlacedFactory(), at=watermark)
    take(Aggregates)
    # when an entry for `minute` and one for the next minute arrive afterwards
    logged(OrderPlacedFactory(), at=minute + timedelta(seconds=30))
    logged(OrderPlacedFactory(), at=minute + timedelta(minutes=1, seconds=30))
    take(Aggregates)
    # then both count in their own minutes; only the one for the final minute is late
    found = figures()
    assert found[(minute, "orders_placed", "")] == 1
    assert found[(minute + timedelta(minutes=1), "orders_placed", "")] == 1
    assert found[(minute, "late_entries", "")] == 1
    assert totals()[("late_entries", "")] == 1
    # and a late entry does not move the watermark back
    assert state_of(Aggregates).state["watermark"] == watermark.isoformat()


def test_entries_within_the_allowed_lateness_are_not_late(minute):
    logged(OrderPlacedFactory(), at=minute + timedelta(minutes=6))
    logged(OrderPlacedFactory(), at=minute + timedelta(minutes=2))
    take(Aggregates)
    assert ("late_entries", "") not in totals()


@pytest.mark.parametrize("apart", ["same batch", "next batch"])
def test_a_message_appended_twice_is_counted_once(minute, apart):
    # given an order placed and its payment, the payment appended again (a relay resend)
    placed = envelope_at(OrderPlacedFactory(), at=minute)
    paid = envelope_at(PaymentProcessedFactory(amount=Decimal("5.00")), at=minute)
    state_of(Aggregates)
    batches = (
        [[entry(placed, 1), entry(paid, 2), entry(paid, 3)]]
        if apart == "same batch"
        else [[entry(placed, 1), entry(paid, 2)], [entry(paid, 3)]]
    )
    # when the aggregates take the batches
    offset = None
    for batch in batches:
        processor = Aggregates(state=state_of(Aggregates).state)
        offset = batch_commit(processor, expected_offset=offset, entries=batch).offset
    # then the payment counts once, and the copy is counted as a duplicate
    assert figures()[(minute, "money_captured", "EUR")] == Decimal("5.00")
    assert figures()[(minute, "payments_succeeded", "")] == 1
    state = ProcessorState.objects.get(processor="aggregates")
    assert (state.offset, state.entries_processed, state.duplicates_skipped) == (3, 2, 1)


class TestDurationBucket:
    def test_a_duration_falls_in_the_smallest_bound_it_does_not_exceed(self):
        for lower, upper in itertools.pairwise(DURATION_BOUNDS):
            assert float(duration_bucket(upper)) == pytest.approx(upper, rel=1e-5)
            assert float(duration_bucket(lower + (upper - lower) / 2)) == pytest.approx(
                upper, rel=1e-5
            )
            assert float(duration_bucket(lower * 1.000001)) == pytest.approx(upper, rel=1e-5)

    def test_a_duration_below_the_first_bound_is_in_the_first_bucket(self):
        assert duration_bucket(0) == duration_bucket(0.001) == duration_bucket(DURATION_BOUNDS[0])

    @pytest.mark.parametrize("seconds", [0.07, 1.0, 42.5, 3 * 3600, 4 * 24 * 3600])
    def test_a_bucket_is_at_most_20_percent_above_the_duration_up_to_days(self, seconds):
        bound = float(duration_bucket(seconds))
        assert seconds <= bound <= seconds * 1.2

    def test_the_buckets_reach_about_five_days(self):
        assert 4.5 * 24 * 3600 <= DURATION_BOUNDS[-1] <= 6 * 24 * 3600

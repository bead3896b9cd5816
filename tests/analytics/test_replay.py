"""replay_events: where a replay may start, the shadow it rebuilds, the comparison, the swap."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics.aggregates import Aggregates, minute_of
from analytics.models import MinuteFigure, ProcessorState, ScreenedOrder, SeenMessage, Slot
from analytics.projections import PROCESSORS
from messaging.models import OutboxMessage
from tests.analytics.factories import PaymentFailedFactory, PaymentProcessedFactory
from tests.analytics.log import figures, logged, take
from tests.support.order_messages import OrderCompletedFactory, OrderPlacedFactory

pytestmark = pytest.mark.usefixtures("table_log")


def replay(*args: str) -> str:
    """replay_events with these arguments; what it printed."""
    out = io.StringIO()
    call_command("replay_events", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def snapshot() -> dict:
    """Every row a replay could change, as text."""
    return {
        model.__name__: sorted(str(values) for values in model.objects.values_list())
        for model in {
            ProcessorState,
            SeenMessage,
            OutboxMessage,
            *(m for p in PROCESSORS.values() for m in p.models),
        }
    }


def rows(model, slot: str) -> list[tuple]:
    """A projection table's rows in one slot, without their id and slot."""
    columns = [f.attname for f in model._meta.concrete_fields if f.attname not in ("id", "slot")]
    return sorted(model.objects.filter(slot=slot).values_list(*columns))


@pytest.fixture
def history(settings):
    """A log of a few orders an hour ago, some paid, one completed, taken by both processors."""
    settings.FRAUD_MAX_ORDERS, settings.FRAUD_MAX_DECLINES = 2, 1
    settings.FRAUD_WINDOW_SECONDS = 600
    start = timezone.now() - timedelta(hours=1)
    orders = [OrderPlacedFactory(card_fingerprint="fp_card") for _ in range(4)]
    for n, order in enumerate(orders):
        at = start + timedelta(seconds=40 * n)
        logged(order, at=at)
        logged(PaymentProcessedFactory(order_id=order.order_id), at=at + timedelta(seconds=1))
    logged(PaymentFailedFactory(order_id=orders[0].order_id), at=start + timedelta(seconds=2))
    logged(OrderCompletedFactory(order_id=orders[1].order_id), at=start + timedelta(minutes=3))
    for processor in PROCESSORS.values():
        take(processor)
    return start


@pytest.mark.django_db
class TestWhereAReplayStarts:
    @pytest.mark.parametrize(
        ("args", "error"),
        [
            (
                ["--projection", "nope"],
                "there is no projection named 'nope'; the projections are: aggregates, fraud",
            ),
            ([], "name a projection with --projection: aggregates, fraud"),
            (["--projection", "aggregates", "--from", "-1"], "-1: an offset is not negative"),
            (["--projection", "aggregates", "--from", "yesterday"], "give first, an offset"),
            (["--projection", "aggregates", "--from", "12abc"], "give first, an offset"),
            (["--projection", "aggregates", "--from", "2026-13-45T99:00"], "give first, an offset"),
            (["--projection", "aggregates", "--from", ""], "give first, an offset"),
            (["--projection", "aggregates", "--from=--5"], "give first, an offset"),
            (
                ["--projection", "aggregates", "--from", "\N{SUPERSCRIPT TWO}"],
                "give first, an offset",
            ),
        ],
        ids=[
            "unknown",
            "none",
            "negative",
            "a word",
            "digits and more",
            "no date",
            "empty",
            "two minus signs",
            "a digit that is no number",
        ],
    )
    def test_a_replay_that_cannot_start_is_a_clear_error_and_changes_nothing(
        self, history, args, error
    ):
        before = snapshot()
        with pytest.raises(CommandError) as raised:
            replay(*args)
        assert error in str(raised.value)
        assert snapshot() == before

    def test_an_offset_beyond_the_head_is_refused(self, history):
        head = OutboxMessage.objects.filter(kind="event").order_by("-id").first().pk
        before = snapshot()
        with pytest.raises(CommandError, match=f"{head + 1}: the log's last offset is {head}$"):
            replay("--projection", "aggregates", "--from", str(head + 1))
        assert snapshot() == before

    def test_an_offset_the_log_no_longer_keeps_is_refused(self, history):
        # given the log's oldest entries have expired
        events = OutboxMessage.objects.filter(kind="event").order_by("id")
        expired = events[0].pk
        events.filter(pk__lte=expired + 1).delete()
        before = snapshot()
        with pytest.raises(
            CommandError, match=f"keeps offsets from {expired + 2} on \\(older ones have expired\\)"
        ):
            replay("--projection", "aggregates", "--from", str(expired))
        assert snapshot() == before

    def test_an_offset_in_an_empty_log_is_refused(self):
        with pytest.raises(CommandError, match="0: the event log is empty"):
            replay("--projection", "aggregates", "--from", "0")

    def test_a_time_in_the_future_is_refused(self, history):
        later = (timezone.now() + timedelta(minutes=5)).isoformat()
        before = snapshot()
        with pytest.raises(CommandError, match="that time is in the future"):
            replay("--projection", "fraud", "--from", later)
        assert snapshot() == before

    def test_list_prints_one_projection_per_line(self):
        assert replay("--list") == "".join(f"{name}\n" for name in PROCESSORS)


# Replays run the runner, which closes its connection when done: transactional tests.
replays = pytest.mark.django_db(transaction=True)


@replays
@pytest.mark.parametrize("name", list(PROCESSORS))
def test_a_replay_from_the_first_entry_rebuilds_the_live_projection(history, name):
    # given the live projection up to date, and nothing published or mailed since
    before = OutboxMessage.objects.count()
    # when it is replayed from the first entry
    out = replay("--projection", name, "--from", "first")
    # then the shadow holds the same rows, and the replay said so (exit status 0)
    assert "Shadow and live are the same." in out
    assert "DIFFERENT" not in out
    for model in PROCESSORS[name].models:
        assert rows(model, Slot.SHADOW) == rows(model, Slot.LIVE) != [], model.__name__
    shadow_state = ProcessorState.objects.get(processor=name, slot=Slot.SHADOW)
    assert shadow_state.offset == ProcessorState.objects.get(processor=name, slot=Slot.LIVE).offset
    # and the replay published nothing and sent no email
    assert OutboxMessage.objects.count() == before
    assert mail.outbox == []


@replays
def test_the_fraud_screens_verdicts_are_rebuilt_without_publishing_them_again(history):
    assert ScreenedOrder.objects.filter(slot=Slot.LIVE, verdict="suspected_fraud").count() == 2
    screened = OutboxMessage.objects.filter(type="OrderScreened").count()
    replay("--projection", "fraud")
    assert ScreenedOrder.objects.filter(slot=Slot.SHADOW, verdict="suspected_fraud").count() == 2
    assert OutboxMessage.objects.filter(type="OrderScreened").count() == screened == 4


@replays
def test_a_tampered_live_row_is_shown_as_a_difference_with_exit_status_1(history):
    # given one live figure changed behind the processor's back
    row = MinuteFigure.objects.filter(slot=Slot.LIVE, metric="money_captured").earliest("minute")
    right = row.value
    MinuteFigure.objects.filter(pk=row.pk).update(value=right + 1)
    # when the aggregates are replayed
    out = io.StringIO()
    with pytest.raises(CommandError, match="the rebuilt aggregates differs from the live one"):
        call_command(
            "replay_events", "--projection", "aggregates", stdout=out, stderr=io.StringIO()
        )
    # then the replay shows the row as it is live and as it was rebuilt
    printed = out.getvalue()
    assert "Shadow and live differ:" in printed
    assert "analytics_minutefigure" in printed and "DIFFERENT" in printed
    when = row.minute.isoformat()
    assert (
        f"only live:   {when} | money_captured | {row.key} | {(right + 1).normalize():f}" in printed
    )
    assert f"only shadow: {when} | money_captured | {row.key} | {right.normalize():f}" in printed
    # and the live row is left as it was
    assert MinuteFigure.objects.get(pk=row.pk).value == right + 1


@replays
def test_swap_makes_the_shadow_live_and_a_later_replay_is_the_same(history):
    # given a tampered live figure
    right = figures()
    MinuteFigure.objects.filter(slot=Slot.LIVE, metric="orders_placed").update(value=99)
    before = ProcessorState.objects.get(processor="aggregates", slot=Slot.LIVE)
    # when the aggregates are replayed and swapped
    out = replay("--projection", "aggregates", "--swap")
    # then the rebuilt figures are live, at the offset they were rebuilt to, and no shadow is left
    assert f"The shadow of aggregates is now live, at offset {before.offset}." in out
    assert figures() == right
    assert not MinuteFigure.objects.filter(slot=Slot.SHADOW).exists()
    live = ProcessorState.objects.get(processor="aggregates", slot=Slot.LIVE)
    assert (live.offset, live.entries_processed) == (before.offset, before.entries_processed)
    assert not ProcessorState.objects.filter(processor="aggregates", slot=Slot.SHADOW).exists()
    # and the live processor goes on from there, and a later replay is the same
    logged(PaymentProcessedFactory(amount=Decimal("3.00")), at=history)
    take(Aggregates)
    assert "Shadow and live are the same." in replay("--projection", "aggregates")


@replays
def test_a_replay_from_an_offset_rebuilds_what_came_from_there_on(history):
    # given the offset of the completion, the last entry
    completed = OutboxMessage.objects.get(type="OrderCompleted").pk
    # when the aggregates are replayed from there
    with pytest.raises(CommandError):
        replay("--projection", "aggregates", "--from", str(completed))
    # then the shadow holds that completion alone (its order's placing came before)
    assert figures(Slot.SHADOW) == {
        (minute_of(history + timedelta(minutes=3)), "orders_completed", ""): 1
    }


@replays
@pytest.mark.timeout(20)
def test_a_replay_from_a_time_after_the_last_entry_ends_with_an_empty_shadow(history):
    # given no entry from now on
    since = timezone.now().isoformat()
    # when the aggregates are replayed from then
    out = io.StringIO()
    with pytest.raises(CommandError, match="differs from the live one"):
        call_command(
            "replay_events", "--projection", "aggregates", "--from", since, stdout=out,
            stderr=io.StringIO(),
        )  # fmt: skip
    # then it ends, with nothing rebuilt
    assert "Replayed 0 entries" in out.getvalue()
    assert figures(Slot.SHADOW) == {}

"""The dashboard's figures, read from the database (the broker's part is stubbed here:
tests/live/test_broker.py asks the real one)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.aggregates import duration_bucket, minute_of
from analytics.models import MinuteFigure, ProcessorState
from live.dashboard import snapshot
from live.figures import business, flow, fraud, gateway, outbox, queues
from live.figures.broker import BrokerReading
from messaging.models import DeadLetter, InboxRecord, OutboxMessage, RelayRun
from orders.models import Order
from tests.analytics.factories import FraudClearanceFactory, FraudFlagFactory
from tests.live.stub_broker import StubProbe
from tests.orders.factories import OrderFactory, OrderSagaFactory

pytestmark = pytest.mark.django_db


def figure(minute, metric: str, value, key: str = "", slot: str = "live") -> None:
    MinuteFigure.objects.create(slot=slot, minute=minute, metric=metric, key=key, value=value)


@pytest.fixture
def now():
    return timezone.now()


def test_business_figures_per_minute_and_in_rolling_windows(now):
    # Given the aggregates of this minute, of two minutes ago and of ten minutes ago
    this, two_ago, ten_ago = (minute_of(now) - timedelta(minutes=m) for m in (0, 2, 10))
    for minute, placed in ((this, 4), (two_ago, 3), (ten_ago, 7)):
        figure(minute, "orders_placed", placed)
    figure(this, "orders_completed", 2)
    figure(this, "orders_cancelled", 1, key="card_declined")
    figure(two_ago, "orders_cancelled", 1, key="out_of_stock")
    figure(this, "money_captured", Decimal("40.00"), key="EUR")
    figure(two_ago, "money_refunded", Decimal("9.50"), key="EUR")
    figure(this, "payments_succeeded", 3)
    figure(this, "payments_declined", 1)
    figure(this, "completion_seconds", 1, key=duration_bucket(2.0))
    figure(this, "completion_seconds", 1, key=duration_bucket(30.0))
    figure(this, "orders_placed", 100, slot="shadow")  # a replay's, not shown

    # When the business figures are read
    found = business.business(now=now)

    # Then each minute has its own, oldest first, the last being this one
    rows = found["per_minute"]
    assert len(rows) == 30
    assert rows[-1]["minute"] == this.isoformat()
    assert [r["orders_placed"] for r in rows[-3:]] == [3, 0, 4]
    latest = rows[-1]
    assert (latest["orders_completed"], latest["orders_cancelled"]) == (2, 1)
    assert latest["money_captured"] == {"EUR": "40.00"}
    assert rows[-3]["money_refunded"] == {"EUR": "9.50"}
    assert latest["decline_rate"] == 0.25
    assert rows[-2]["decline_rate"] is None
    # (read off the duration histogram: each within its bucket, 20% wide)
    assert latest["completion_p50"] == float(duration_bucket(2.0))
    assert 25 < latest["completion_p95"] <= float(duration_bucket(30.0))
    # and the rolling windows add the minutes up: ten minutes ago is only in the hour's
    five, sixty = found["summary"]["5m"], found["summary"]["60m"]
    assert (five["orders_placed"], sixty["orders_placed"]) == (7, 14)
    assert five["orders_cancelled"] == 2
    assert five["orders_cancelled_by_reason"] == {"card_declined": 1, "out_of_stock": 1}
    assert (five["money_captured"], five["money_refunded"]) == ({"EUR": "40.00"}, {"EUR": "9.50"})
    assert five["decline_rate"] == 0.25
    assert found["currency"] == "EUR"


def test_processors_say_how_far_behind_and_whether_they_beat(now):
    # Given a processor that beat a moment ago and one whose last beat is a minute old
    ProcessorState.objects.create(
        processor="aggregates", offset=41, lag_entries=3, lag_seconds=0.4, heartbeat_at=now
    )
    ProcessorState.objects.create(
        processor="fraud", heartbeat_at=now - timedelta(minutes=1), last_error="log lost"
    )
    ProcessorState.objects.create(processor="fraud", slot="shadow", heartbeat_at=now)

    # When they are read
    found = {p["processor"]: p for p in business.processors(now=now)}

    # Then the live ones are there, the silent one stale
    assert set(found) == {"aggregates", "fraud"}
    assert (found["aggregates"]["lag_entries"], found["aggregates"]["is_stale"]) == (3, False)
    assert found["fraud"]["is_stale"] is True
    assert found["fraud"]["heartbeat_age_seconds"] == pytest.approx(60, abs=1)
    assert found["fraud"]["last_error"] == "log lost"


def deliveries(handler: str, *, seconds_ago: float, n: int, now) -> None:
    InboxRecord.objects.bulk_create(
        InboxRecord(
            message_id=uuid.uuid4(),
            handler=handler,
            processed_at=now - timedelta(seconds=seconds_ago),
        )
        for _ in range(n)
    )


def dead_letter(queue: str, *, failed_ago: timedelta, redriven: bool = False, now) -> None:
    DeadLetter.objects.create(
        queue=queue,
        handler=f"{queue}.handler",
        reason=DeadLetter.Reason.RETRIES_EXHAUSTED,
        error="RuntimeError: boom",
        first_failed_at=now - failed_ago,
        last_failed_at=now - failed_ago,
        redriven_at=now if redriven else None,
    )


def test_queue_rows_count_deliveries_dead_letters_and_say_what_is_not_known(settings, now):
    # Given deliveries in the last 10 s, the last minute and before, for two apps' handlers
    settings.REDIS_URL = ""
    deliveries("payments.charge_for_order", seconds_ago=3, n=20, now=now)
    deliveries("payments.refund_payment", seconds_ago=30, n=40, now=now)
    deliveries("payments.charge_for_order", seconds_ago=120, n=500, now=now)
    deliveries("orders.mark_paid", seconds_ago=45, n=6, now=now)
    # and dead letters: pending now, redriven, and recorded long ago
    dead_letter("payments", failed_ago=timedelta(minutes=5), now=now)
    dead_letter("payments", failed_ago=timedelta(minutes=10), redriven=True, now=now)
    dead_letter("payments", failed_ago=timedelta(days=2), now=now)
    dead_letter("shipping", failed_ago=timedelta(days=2), redriven=True, now=now)

    # When the queues are read, the broker saying 3 ready and 1 consumer for each
    found = queues.queues(now=now, probe=StubProbe())

    # Then every queue of MESSAGING_QUEUES has its row
    rows = {row["queue"]: row for row in found["rows"]}
    assert list(rows) == settings.MESSAGING_QUEUES
    payments = rows["payments"]
    assert (payments["depth"], payments["consumers"]) == (3, 1)
    assert payments["deliveries_per_second_10s"] == 2.0
    assert payments["deliveries_per_second_60s"] == 1.0
    assert rows["orders"]["deliveries_per_second_60s"] == 0.1
    assert rows["shipping"]["deliveries_per_second_60s"] == 0.0
    assert (payments["dead_letters_pending"], payments["dead_letters_last_hour"]) == (2, 2)
    shipping = rows["shipping"]
    assert (shipping["dead_letters_pending"], shipping["dead_letters_last_hour"]) == (0, 0)
    # and, without Redis, the retries are not known, and it says why
    assert payments["retries_5m"] is None
    assert found["retries"] == {
        "minutes": 5,
        "is_counted": False,
        "reason": "not counted without Redis (REDIS_URL is not set)",
    }


def test_a_broker_that_cannot_be_asked_leaves_depths_unknown_with_the_reason(now):
    # Given a broker that cannot be reached
    probe = StubProbe(lambda names: BrokerReading.unavailable(names, "broker unreachable: refused"))

    # When the queues are read
    found = queues.queues(now=now, probe=probe)

    # Then depth and consumers are None, and the reason is given
    assert found["broker"] == {"is_available": False, "reason": "broker unreachable: refused"}
    assert {(row["depth"], row["consumers"]) for row in found["rows"]} == {(None, None)}
    assert {row["broker_reason"] for row in found["rows"]} == {"broker unreachable: refused"}


def test_outbox_backlog_its_oldest_row_and_the_relays_last_run(now):
    # Given two messages not yet sent, one sent, and beat's record of the relay
    def message(occurred_ago: int, *, sent: bool) -> None:
        OutboxMessage.objects.create(
            message_id=uuid.uuid4(),
            kind="event",
            type="OrderPlaced",
            version=1,
            occurred_at=now - timedelta(seconds=occurred_ago),
            correlation_id="c",
            payload={},
            dispatched_at=now if sent else None,
        )

    message(90, sent=True)
    message(40, sent=False)
    message(5, sent=False)
    RelayRun.objects.create(
        name=RelayRun.OUTBOX,
        ran_at=now - timedelta(seconds=12),
        runner="payments-worker@host",
    )

    # When the outbox is read
    found = outbox.outbox(now=now)

    # Then the backlog is the two, the oldest of them 40 s old, and the relay ran 12 s ago
    assert found["backlog"] == 2
    assert found["oldest_pending_age_seconds"] == pytest.approx(40, abs=0.2)
    relay = found["relay"]
    assert relay["has_run"] is True
    assert relay["last_run_age_seconds"] == pytest.approx(12, abs=0.2)
    assert relay["last_runner"] == "payments-worker@host"
    assert relay["is_late"] is False


def test_an_empty_outbox_and_no_relay_say_so():
    found = outbox.outbox(now=timezone.now())

    assert (found["backlog"], found["oldest_pending_age_seconds"]) == (0, None)
    assert found["relay"]["has_run"] is False
    assert found["relay"]["last_run_at"] is None
    assert found["relay"]["is_late"] is True


def test_open_sagas_by_state():
    # Given sagas running, compensating, parked and ended
    OrderSagaFactory.create_batch(2)
    OrderSagaFactory(refunding=True)
    OrderSagaFactory(parked=True)
    OrderSagaFactory(completed=True)
    OrderSagaFactory(cancelled=True)

    found = flow.sagas()

    # Then the open ones are counted by state, zero included
    assert found["by_state"] == {"running": 2, "compensating": 1, "needs_attention": 1}
    assert found["labels"]["needs_attention"] == "Needs attention"
    assert found["admin_url"] == "/admin/orders/ordersaga/"


def test_stuck_orders_count_and_list_the_oldest_ten_with_admin_links(settings, now):
    # Given twelve orders open past STUCK_ORDER_AGE, a recent one and an old closed one
    settings.STUCK_ORDER_AGE = 300
    stuck = OrderFactory.create_batch(12)
    for i, order in enumerate(stuck):
        Order.objects.filter(pk=order.pk).update(created_at=now - timedelta(minutes=30 - i))
    OrderFactory()
    closed = OrderFactory(completed=True)
    Order.objects.filter(pk=closed.pk).update(created_at=now - timedelta(hours=2))

    found = flow.stuck(now=now)

    # Then all twelve are counted and the ten oldest listed, each with its admin page
    assert found["count"] == 12
    assert found["page_url"] == "/staff/stuck-orders/"
    assert [row["id"] for row in found["oldest"]] == [str(o.pk) for o in stuck[:10]]
    first = found["oldest"][0]
    assert first["admin_url"] == f"/admin/orders/order/{stuck[0].pk}/change/"
    assert first["waiting_on"] == "payments: charge the card"
    assert first["age_seconds"] == pytest.approx(1800, abs=1)


def test_suspected_fraud_counts_flags_not_cleared_and_links_them():
    # Given a flag not cleared, and one whose card staff cleared since
    flag = FraudFlagFactory(key="fp_suspect", key_kind="email")
    flag.key = "mallory@example.com"
    flag.save()
    FraudFlagFactory(key="fp_cleared", fired_at=timezone.now() - timedelta(minutes=3))
    FraudClearanceFactory(key="fp_cleared", cleared_at=timezone.now())

    found = fraud.suspected_fraud()

    assert found["count"] == 1
    (listed,) = found["latest"]
    assert listed["who"] == "mallory@example.com"
    assert listed["admin_url"] == f"/admin/analytics/fraudflag/{flag.pk}/change/"
    assert listed["order_admin_url"] == f"/admin/orders/order/{flag.order_id}/change/"


def test_the_breaker_is_shown_only_when_the_workers_share_it(settings):
    # Without a Redis for it each worker has its own: none is shown
    settings.PAYMENT_GATEWAY_BREAKER_REDIS_URL = ""
    alone = gateway.gateway_breaker()
    assert (alone["is_shared"], alone["state"]) == (False, None)
    assert "each payments worker keeps its own breaker" in alone["reason"]


def test_the_snapshot_is_json_with_every_part():
    found = snapshot(probe=StubProbe())

    assert set(found) == {
        "generated_at",
        "business",
        "processors",
        "queues",
        "outbox",
        "sagas",
        "breaker",
        "stuck_orders",
        "fraud",
        "links",
    }
    assert json.loads(json.dumps(found)) == found

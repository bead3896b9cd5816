"""The shop's gauges, read at scrape time from the database (and a broker stand-in)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import CollectorRegistry

from analytics.models import ProcessorState
from live.figures.broker import BrokerReading, QueueCount
from messaging.models import OutboxMessage
from metrics.collectors import ShopCollector
from orders.models import OrderSaga
from tests.orders.factories import OrderSagaFactory
from tests.probe.events import ProbePinged
from tests.support.envelopes import envelope_of

pytestmark = pytest.mark.django_db


class BrokerSays:
    """A queue probe that answers what it is given, or fails as a broken one would."""

    def __init__(self, reading: BrokerReading | None = None, error: Exception | None = None):
        self.reading, self.error = reading, error

    def read(self, queues: list[str]) -> BrokerReading:
        if self.error is not None:
            raise self.error
        return self.reading


def scrape(probe) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ShopCollector(probe=probe))
    return registry


def reachable(**depths: int) -> BrokerSays:
    return BrokerSays(
        BrokerReading(True, None, {q: QueueCount(depth=n, consumers=1) for q, n in depths.items()})
    )


def pending(age: timedelta) -> None:
    row = OutboxMessage.from_envelope(envelope_of(ProbePinged(probe_id="p")))
    row.occurred_at = timezone.now() - age
    row.save()


def test_the_outbox_backlog_and_its_oldest_age():
    # Given two messages waiting, the oldest for two minutes, and one dispatched
    pending(timedelta(minutes=2))
    pending(timedelta(seconds=5))
    sent = OutboxMessage.from_envelope(envelope_of(ProbePinged(probe_id="d")))
    sent.dispatched_at = timezone.now()
    sent.save()

    # When the gauges are read
    registry = scrape(reachable())

    # Then they count the two, the oldest two minutes old; the relay never ran
    assert registry.get_sample_value("eventshop_outbox_pending_messages") == 2
    age = registry.get_sample_value("eventshop_outbox_oldest_pending_age_seconds")
    assert age == pytest.approx(120, abs=2)
    assert registry.get_sample_value("eventshop_relay_last_run_age_seconds") is None


def test_queue_depths_and_consumers_as_the_broker_counts_them():
    registry = scrape(reachable(payments=3, orders=0))

    assert registry.get_sample_value("eventshop_broker_reachable") == 1
    assert registry.get_sample_value("eventshop_queue_depth", {"queue": "payments"}) == 3
    assert registry.get_sample_value("eventshop_queue_depth", {"queue": "orders"}) == 0
    assert registry.get_sample_value("eventshop_queue_consumers", {"queue": "payments"}) == 1


def test_a_broker_that_cannot_count_leaves_the_depths_out():
    reading = BrokerReading.unavailable(["payments"], "broker unreachable")

    registry = scrape(BrokerSays(reading))

    assert registry.get_sample_value("eventshop_broker_reachable") == 0
    assert registry.get_sample_value("eventshop_queue_depth", {"queue": "payments"}) is None


def test_sagas_in_each_open_state():
    # Given two running sagas, one needing attention and one that ended
    OrderSagaFactory.create_batch(2)
    OrderSagaFactory(state=OrderSaga.State.NEEDS_ATTENTION)
    OrderSagaFactory(state=OrderSaga.State.COMPLETED)

    registry = scrape(reachable())

    def sagas(state: str) -> float | None:
        return registry.get_sample_value("eventshop_sagas", {"state": state})

    assert (sagas("running"), sagas("compensating"), sagas("needs_attention")) == (2, 0, 1)
    assert sagas("completed") is None


def test_a_breaker_each_process_keeps_for_itself_has_no_state_here(settings):
    settings.PAYMENT_GATEWAY_BREAKER_REDIS_URL = ""

    registry = scrape(reachable())

    assert registry.get_sample_value("eventshop_gateway_breaker_shared") == 0
    assert registry.get_sample_value("eventshop_gateway_breaker_state", {"state": "closed"}) is None


def test_each_stream_processors_lag_and_heartbeat():
    now = timezone.now()
    ProcessorState.objects.create(
        processor="aggregates", offset=41, lag_entries=3, lag_seconds=0.4, heartbeat_at=now
    )
    ProcessorState.objects.create(processor="fraud", slot="shadow", lag_entries=99)

    registry = scrape(reachable())

    labels = {"processor": "aggregates"}
    assert registry.get_sample_value("eventshop_stream_processor_lag_entries", labels) == 3
    assert registry.get_sample_value("eventshop_stream_processor_lag_seconds", labels) == 0.4
    assert registry.get_sample_value(
        "eventshop_stream_processor_heartbeat_age_seconds", labels
    ) == pytest.approx(0, abs=2)
    # A replay's shadow is no running processor
    shadow = {"processor": "fraud"}
    assert registry.get_sample_value("eventshop_stream_processor_lag_entries", shadow) is None


def test_a_part_that_fails_is_reported_and_the_others_still_answer(caplog):
    registry = scrape(BrokerSays(error=ConnectionError("the probe broke")))

    def success(part: str) -> float | None:
        return registry.get_sample_value("eventshop_scrape_collector_success", {"collector": part})

    assert success("queues") == 0
    assert success("outbox") == success("sagas") == success("stream_processors") == 1
    assert registry.get_sample_value("eventshop_outbox_pending_messages") == 0
    assert "the queues gauges could not be read" in caplog.text

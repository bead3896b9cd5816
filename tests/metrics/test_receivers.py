"""The counters as the backbone's signals move them, in this process (no broker)."""

import pytest

from messaging.dead_letters import dead_letter_record
from messaging.delivery import delivery_run
from messaging.relay import outbox_relay
from messaging.signals import message_confirmed, message_published, notify
from messaging.subscriptions import Handler
from metrics import instruments
from tests.probe.events import ProbePinged
from tests.support.envelopes import envelope_of
from tests.support.probes import new_probe_id

pytestmark = pytest.mark.django_db(transaction=True)

counted_here = Handler(lambda message, envelope: None, (ProbePinged,), "probe_a", "probe.metrics")


def value(name: str, **labels) -> float:
    return instruments.registry.get_sample_value(name, labels) or 0.0


def test_each_delivery_is_counted_by_handler_type_and_outcome_and_handled_ones_timed():
    # Given a message for a handler, and what was counted so far
    envelope = envelope_of(ProbePinged(probe_id=new_probe_id()))
    labels = {"handler": "probe.metrics", "type": "ProbePinged"}
    before = {
        outcome: value("eventshop_deliveries_total", **labels, outcome=outcome)
        for outcome in ("handled", "duplicate")
    }
    timed = value("eventshop_handler_duration_seconds_count", **labels)

    # When it is delivered twice
    for _ in range(2):
        delivery_run(
            handler=counted_here, args=(), kwargs={"envelope": envelope.to_wire()}, retries=0
        )

    # Then one took effect and one was a duplicate; the handled one was timed
    for outcome in ("handled", "duplicate"):
        found = value("eventshop_deliveries_total", **labels, outcome=outcome)
        assert found == before[outcome] + 1, outcome
    assert value("eventshop_handler_duration_seconds_count", **labels) == timed + 1


def test_a_dead_letter_is_counted_with_labels_the_code_knows():
    # Given what was counted so far
    known = {"handler": "payments.charge_for_order", "type": "OrderPlaced", "reason": "malformed"}
    unknown = {"handler": "unknown", "type": "unknown", "reason": "unknown_task"}
    before = [value("eventshop_dead_letters_total", **labels) for labels in (known, unknown)]

    # When a dead letter names a real handler and message, and another names what a poison
    # message made up
    envelope = envelope_of(ProbePinged(probe_id="x")).to_wire()
    dead_letter_record(
        reason="malformed",
        error="x",
        handler_name="payments.charge_for_order",
        envelope={**envelope, "type": "OrderPlaced"},
    )
    dead_letter_record(
        reason="unknown_task",
        error="x",
        handler_name="made.up",
        envelope={**envelope, "type": "MadeUp"},
    )

    # Then each is counted, the made-up names as "unknown" (no series per poison message)
    after = [value("eventshop_dead_letters_total", **labels) for labels in (known, unknown)]
    assert after == [before[0] + 1, before[1] + 1]


def test_published_and_confirmed_messages_are_counted_by_type():
    # Given two envelopes, and what was counted so far
    envelopes = [envelope_of(ProbePinged(probe_id=new_probe_id())) for _ in range(2)]
    labels = {"type": "ProbePinged", "kind": "event"}
    published = value("eventshop_messages_published_total", **labels)
    confirmed = value("eventshop_messages_confirmed_total", **labels)

    # When the backbone says both were committed, and one confirmed
    notify(message_published, envelopes=envelopes)
    notify(message_confirmed, envelopes=envelopes[:1])

    # Then both are counted as published, one as confirmed
    assert value("eventshop_messages_published_total", **labels) == published + 2
    assert value("eventshop_messages_confirmed_total", **labels) == confirmed + 1


def test_a_relay_run_is_counted_with_its_outcome():
    idle = value("eventshop_relay_runs_total", outcome="idle")

    outbox_relay(runner="the test")

    assert value("eventshop_relay_runs_total", outcome="idle") == idle + 1


def test_every_metric_has_labels():
    # A worker switches prometheus_client to files after import (metrics.groups): a metric
    # without labels would have made its value in memory already, and be lost.
    assert all(metric._labelnames for metric in instruments.ALL)

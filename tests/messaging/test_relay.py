"""The relay: what was committed but never dispatched still reaches its subscribers."""

import os
import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from messaging import outbox, relay
from messaging.models import OutboxMessage, RelayRun
from messaging.relay import outbox_relay
from messaging.selectors import relay_last_run
from tests.probe.events import ProbePinged
from tests.probe.models import ProbeEffect
from tests.support.probes import effects, new_probe_id
from tests.support.waiting import wait_for
from tests.support.workers import workers_running

pytestmark = pytest.mark.django_db(transaction=True)


def committed_but_never_dispatched(probe_id: str, *, age_seconds: float = 0) -> OutboxMessage:
    """The state a process leaves when it dies between its commit and the dispatch."""
    message_id = uuid.uuid4()
    return OutboxMessage.objects.create(
        message_id=message_id,
        kind="event",
        type=ProbePinged.message_type,
        version=ProbePinged.message_version,
        occurred_at=timezone.now() - timezone.timedelta(seconds=age_seconds),
        correlation_id=str(message_id),
        payload=ProbePinged(probe_id=probe_id).model_dump(mode="json"),
    )


def test_relay_leaves_messages_younger_than_the_grace_period(workers):
    row = committed_but_never_dispatched(new_probe_id())

    result = outbox_relay(grace_seconds=60)

    assert (result.dispatched, result.failed) == (0, 0)
    row.refresh_from_db()
    assert row.dispatched_at is None


def test_relay_command_delivers_what_a_dead_process_left_behind(workers, capsys):
    probe_id = new_probe_id()
    row = committed_but_never_dispatched(probe_id, age_seconds=30)

    call_command("relay_outbox")

    assert "1 dispatched, 0 failed" in capsys.readouterr().out
    wait_for(lambda: effects(probe_id, "record_ping").exists(), what="the relayed event")
    row.refresh_from_db()
    assert row.dispatched_at is not None
    assert row.dispatch_attempts == 1


def test_every_run_is_recorded_with_who_ran_it_even_with_nothing_to_send():
    # Given an outbox with nothing pending
    before = timezone.now()

    # When the relay runs
    outbox_relay(runner="payments-worker@host")

    # Then its run is on record, for readiness and the dashboard to read
    run = relay_last_run()
    assert run is not None
    assert run.ran_at >= before
    assert (run.runner, run.dispatched, run.failed) == ("payments-worker@host", 0, 0)

    # And a later run replaces it: one row per relay, however many run it
    outbox_relay()
    assert RelayRun.objects.count() == 1
    assert relay_last_run().runner.endswith(f"pid {os.getpid()}")


@pytest.mark.skipif(
    not connection.features.has_select_for_update_skip_locked, reason="PostgreSQL's SKIP LOCKED"
)
def test_relays_running_at_once_send_each_message_once(workers):
    # Given 150 messages left behind, and three relays starting together in threads
    probe_ids = [new_probe_id() for _ in range(150)]
    rows = [committed_but_never_dispatched(p, age_seconds=30) for p in probe_ids]
    start = threading.Barrier(3)
    results: list[relay.RelayResult] = []

    def relay_until_drained() -> None:
        start.wait()
        try:
            # (A grace period that leaves alone the echoes the workers publish meanwhile.)
            while (result := outbox_relay(grace_seconds=20, batch_size=20)).dispatched:
                results.append(result)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=relay_until_drained) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then every message was sent by exactly one of them, once
    assert sum(result.dispatched for result in results) == len(rows)
    assert sum(result.failed for result in results) == 0
    attempts = OutboxMessage.objects.filter(pk__in=[r.pk for r in rows]).values_list(
        "dispatch_attempts", flat=True
    )
    assert sorted(set(attempts)) == [1]
    wait_for(
        lambda: (
            ProbeEffect.objects.filter(probe_id__in=probe_ids, handler="record_ping").count()
            == len(probe_ids)
        ),
        what="every relayed event handled",
    )


def test_a_worker_relays_on_its_own_timer_with_no_beat_and_no_messaging_worker(workers):
    # Given a message left behind, no beat, and a worker of a queue that is not "messaging"
    # running with the relay on (as every worker does by default outside the tests)
    probe_id = new_probe_id()
    row = committed_but_never_dispatched(probe_id, age_seconds=30)
    env = {**workers["a"].env, "MESSAGING_WORKER_RELAY": "1"}
    with workers_running({"relayer": ("relayer", ["probe_d"], 1)}, env) as started:
        # Then its timer relays it, and probe-a handles it
        wait_for(lambda: effects(probe_id, "record_ping").exists(), what="the worker's relay")
        row.refresh_from_db()
        assert row.dispatch_attempts == 1
        # and records its run once the run is over (a moment after the send)
        run = wait_for(relay_last_run, what="the worker's relay run recorded")
        assert run.runner == started["relayer"].hostname


def test_relay_with_the_broker_unreachable_records_the_failure_and_sends_later(
    workers, broker_proxy, monkeypatch
):
    # Given three messages left behind, more than one chunk of the relay's
    monkeypatch.setattr(relay, "RELAY_CONFIRM_CHUNK", 2)
    probe_ids = [new_probe_id() for _ in range(3)]
    rows = [committed_but_never_dispatched(p, age_seconds=30) for p in probe_ids]

    broker_proxy.stop()
    try:
        result = outbox_relay(grace_seconds=0)
    finally:
        broker_proxy.start()

    assert result.dispatched == 0
    assert result.failed == 3
    for row in rows:
        row.refresh_from_db()
        assert row.dispatched_at is None
        assert row.dispatch_attempts == 1
        assert row.last_dispatch_error

    assert outbox_relay(grace_seconds=0).dispatched == 3
    for probe_id in probe_ids:
        wait_for(lambda p=probe_id: effects(p, "record_ping").exists(), what="the relayed event")


def test_a_message_that_cannot_be_routed_waits_and_the_others_go(workers, monkeypatch):
    # Given two messages left behind, one of which a subscriber's filter fails on
    good, bad = new_probe_id(), new_probe_id()
    rows = [committed_but_never_dispatched(p, age_seconds=30) for p in (good, bad)]
    lookup = outbox.subscribers

    def failing_for_bad(envelope, message=None):
        if envelope.payload["probe_id"] == bad:
            raise AttributeError("'ProbePinged' object has no attribute 'workflow'")
        return lookup(envelope, message)

    monkeypatch.setattr(outbox, "subscribers", failing_for_bad)

    # When the relay runs
    result = outbox_relay(grace_seconds=0)

    # Then the good one went and the bad one waits, saying why
    assert (result.dispatched, result.failed) == (1, 1)
    wait_for(lambda: effects(good, "record_ping").exists(), what="the routable message")
    for row in rows:
        row.refresh_from_db()
    assert rows[0].dispatched_at is not None
    assert rows[1].dispatched_at is None
    assert rows[1].last_dispatch_error == (
        "AttributeError: 'ProbePinged' object has no attribute 'workflow'"
    )

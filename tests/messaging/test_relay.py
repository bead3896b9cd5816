"""The relay: what was committed but never dispatched still reaches its subscribers."""

import subprocess
import sys
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from messaging import outbox, relay
from messaging.models import OutboxMessage
from messaging.relay import outbox_relay
from tests.probe.events import ProbePinged
from tests.support.paths import ROOT
from tests.support.probes import effects, new_probe_id
from tests.support.waiting import wait_for

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


def test_celery_beat_runs_the_relay(workers):
    # Given a message left behind, and celery beat running as `make run` starts it
    probe_id = new_probe_id()
    committed_but_never_dispatched(probe_id, age_seconds=30)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO",
         "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
        cwd=ROOT, env=workers["a"].env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Then the relay task it schedules on the messaging queue delivers it
        wait_for(lambda: effects(probe_id, "record_ping").exists(), what="beat's relay")
    finally:
        beat.terminate()
        beat.wait(timeout=20)


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

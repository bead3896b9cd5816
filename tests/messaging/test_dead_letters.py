"""Poison messages and failing handlers end as dead letters; the queue keeps moving."""

import json
import pickle
import uuid
from datetime import timedelta

import pytest
from celery.exceptions import Reject
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone
from kombu import Producer

from config.celery import app
from messaging.delivery import delivery_run
from messaging.errors import RetryLater
from messaging.models import DeadLetter
from messaging.publishing import publish
from tests.probe.events import ProbePinged, ProbeTroubled
from tests.probe.models import ProbeSwitch
from tests.support.dead_letters import probe_letter
from tests.support.envelopes import envelope_of
from tests.support.probes import effects, new_probe_id, ping
from tests.support.retries import deliver_once, failing_handler
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def send_raw(*, body: bytes, content_type: str, task: str | None, queue: str = "probe_a") -> str:
    """Publish a message to a queue by hand, the way a buggy or foreign producer might."""
    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "id": task_id, "root_id": task_id, "retries": 0}
    if task:
        headers["task"] = task
    with app.connection_for_write() as conn:
        Producer(conn.default_channel).publish(
            body,
            exchange=queue,
            routing_key=queue,
            content_type=content_type,
            content_encoding="utf-8",
            headers=headers,
            delivery_mode=2,
        )
    return task_id


def task_body(envelope) -> bytes:
    return json.dumps([[], {"envelope": envelope}, {}]).encode()


def envelope_for(message_type: str, version: int, payload: dict) -> dict:
    return {
        "message_id": str(uuid.uuid4()),
        "kind": "event",
        "type": message_type,
        "version": version,
        "occurred_at": timezone.now().isoformat(),
        "correlation_id": "poison-test",
        "payload": payload,
    }


def test_malformed_messages_are_dead_lettered_with_a_reason_and_consuming_goes_on(workers):
    # Given poison of every kind on the queue, ahead of a healthy event
    valid = envelope_for("ProbePinged", 1, {"probe_id": new_probe_id()})
    poison = {
        "not json": dict(
            body=b'{"not json', content_type="application/json", task="probe.record_ping"
        ),
        "pickle": dict(
            body=pickle.dumps(((), {"envelope": valid}, {})),
            content_type="application/x-python-serialize",
            task="probe.record_ping",
        ),
        "unknown task": dict(
            body=task_body(valid), content_type="application/json", task="probe.nope"
        ),
        "no task name": dict(
            body=b'{"hello": "world"}', content_type="application/json", task=None
        ),
        "unknown type": dict(
            body=task_body(envelope_for("NoSuchThing", 1, {})),
            content_type="application/json",
            task="probe.record_ping",
        ),
        "unknown version": dict(
            body=task_body(envelope_for("ProbePinged", 7, {"probe_id": "x"})),
            content_type="application/json",
            task="probe.record_ping",
        ),
        "invalid payload": dict(
            body=task_body(envelope_for("ProbePinged", 1, {"note": "no probe id"})),
            content_type="application/json",
            task="probe.record_ping",
        ),
        "not an envelope": dict(
            body=task_body("hello"), content_type="application/json", task="probe.record_ping"
        ),
        "body not a task tuple": dict(
            body=b'{"hello": "world"}', content_type="application/json", task="probe.record_ping"
        ),
        "body a number": dict(body=b"5", content_type="application/json", task="probe.record_ping"),
        "wrong arguments": dict(
            body=json.dumps([[1, 2], {}, {}]).encode(),
            content_type="application/json",
            task="probe.record_ping",
        ),
    }
    for message in poison.values():
        send_raw(**message)
    healthy = new_probe_id()
    ping(healthy)

    # Then the healthy event is handled
    wait_for(lambda: effects(healthy, "record_ping").exists(), what="the healthy event")

    # and every poison message became a dead letter saying what is wrong
    expected = {
        "not json": ("undecodable", "probe.record_ping", "DecodeError"),
        "pickle": ("rejected_content", "probe.record_ping", "application/x-python-serialize"),
        "unknown task": ("unknown_task", "probe.nope", "no handler is registered as 'probe.nope'"),
        "no task name": ("unknown_format", "", "not a task message"),
        "unknown type": ("unknown_message", "probe.record_ping", "'NoSuchThing' version 1"),
        "unknown version": ("unknown_message", "probe.record_ping", "known versions: [1]"),
        "invalid payload": ("invalid_payload", "probe.record_ping", "probe_id: Field required"),
        "not an envelope": ("malformed", "probe.record_ping", "expected an envelope object"),
        "wrong arguments": ("malformed", "probe.record_ping", "unexpected task arguments"),
        "body not a task tuple": (
            "malformed",
            "probe.record_ping",
            "not a task message Celery can read: ValueError",
        ),
        "body a number": (
            "malformed",
            "probe.record_ping",
            "not a task message Celery can read: TypeError",
        ),
    }
    wait_for(
        lambda: DeadLetter.objects.count() >= len(expected), what="a dead letter per poison message"
    )
    letters = list(DeadLetter.objects.all())
    for name, (reason, handler, error) in expected.items():
        matching = [
            dl
            for dl in letters
            if dl.reason == reason and dl.handler == handler and error in dl.error
        ]
        assert len(matching) == 1, f"{name}: {[(d.reason, d.handler, d.error) for d in letters]}"
        assert matching[0].queue == "probe_a"
    assert len(letters) == len(expected)

    # The unknown task kept its envelope, so it can be redriven once a handler exists
    unknown_task = DeadLetter.objects.get(reason="unknown_task")
    assert unknown_task.envelope == valid
    assert unknown_task.is_redrivable


def publish_troubled(probe_id: str) -> None:
    with transaction.atomic():
        ProbeSwitch.objects.create(probe_id=probe_id, is_failing=True)
        publish(ProbeTroubled(probe_id=probe_id))


def wait_for_dead_letter(probe_id: str) -> DeadLetter:
    return wait_for(
        lambda: DeadLetter.objects.filter(envelope__payload__probe_id=probe_id).first(),
        what=f"the dead letter of {probe_id}",
    )


def test_failing_handler_is_retried_with_backoff_then_dead_lettered(workers):
    # Given a handler that fails every time for this probe
    probe_id = new_probe_id()
    publish_troubled(probe_id)

    # Then it is tried once plus every retry, then dead-lettered
    letter = wait_for_dead_letter(probe_id)
    assert letter.reason == DeadLetter.Reason.RETRIES_EXHAUSTED
    assert letter.handler == "probe.fail_while_switched_on"
    assert letter.queue == "probe_a"
    assert letter.message_type == "ProbeTroubled"
    assert letter.attempts == settings.MESSAGING_MAX_RETRIES + 1
    assert f"RuntimeError: probe {probe_id} is switched to fail" in letter.error
    assert "fail_while_switched_on" in letter.traceback

    # with waits that grow: at least half of base * 2**n before retry n+1
    least = sum(
        min(settings.MESSAGING_RETRY_BACKOFF_MAX, settings.MESSAGING_RETRY_BACKOFF * 2**n) / 2
        for n in range(settings.MESSAGING_MAX_RETRIES)
    )
    assert (letter.last_failed_at - letter.first_failed_at).total_seconds() >= least

    # and no attempt left a partial effect behind
    assert not effects(probe_id).exists()


def test_dead_letter_is_redriven_from_the_admin_once_fixed(workers, admin_client):
    # Given a dead letter whose cause is then fixed
    probe_id = new_probe_id()
    publish_troubled(probe_id)
    letter = wait_for_dead_letter(probe_id)
    ProbeSwitch.objects.filter(probe_id=probe_id).update(is_failing=False)

    # When staff redrive it from the admin
    response = admin_client.post(
        "/admin/messaging/deadletter/",
        {"action": "redrive", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 redriven" in response.content.decode()

    # Then the handler takes effect once and the letter is marked redriven
    wait_for(lambda: effects(probe_id).exists(), what="the redriven message to take effect")
    letter.refresh_from_db()
    assert letter.redriven_at is not None
    assert letter.redrive_count == 1
    assert effects(probe_id).count() == 1


def test_dead_letter_is_redriven_from_the_command_at_most_once(workers, capsys):
    probe_id = new_probe_id()
    publish_troubled(probe_id)
    letter = wait_for_dead_letter(probe_id)
    ProbeSwitch.objects.filter(probe_id=probe_id).update(is_failing=False)

    call_command("redrive_dead_letters", str(letter.pk))
    assert "1 redriven" in capsys.readouterr().out
    wait_for(lambda: effects(probe_id).exists(), what="the redriven message to take effect")

    # A second redrive of the same letter is refused
    with pytest.raises(CommandError, match="already redriven"):
        call_command("redrive_dead_letters", str(letter.pk))
    assert effects(probe_id).count() == 1


def test_a_group_is_redriven_from_the_command_and_no_other_letter(workers, capsys):
    # Given dead letters of two causes: two of one, one of another
    probe_ids = [new_probe_id() for _ in range(3)]
    grouped = [probe_letter(n, probe_id=probe_ids[n]) for n in (0, 1)]
    other = probe_letter(2, reason="permanent_error", probe_id=probe_ids[2])
    assert grouped[0].fingerprint == grouped[1].fingerprint != other.fingerprint

    # When the first group is redriven by its fingerprint
    call_command("redrive_dead_letters", "--group", grouped[0].fingerprint)

    # Then both its letters are sent and take effect, and the other letter is left
    assert "2 redriven" in capsys.readouterr().out
    for probe_id in probe_ids[:2]:
        wait_for(lambda p=probe_id: effects(p).exists(), what=f"the redrive of {probe_id}")
    other.refresh_from_db()
    assert other.redriven_at is None
    assert not effects(probe_ids[2]).exists()


def test_an_unknown_group_is_refused_and_nothing_is_redriven():
    letter = probe_letter(1)

    with pytest.raises(CommandError, match="There is no dead letter group 'nope'"):
        call_command("redrive_dead_letters", "--group", "nope")

    letter.refresh_from_db()
    assert letter.redriven_at is None


def test_a_retry_that_cannot_be_published_goes_back_to_the_broker_not_to_the_dead_letters(
    broker_proxy,
):
    with failing_handler() as handler:
        # Given the broker cannot be reached to publish a failed delivery's retry
        broker_proxy.stop()
        try:
            # When the handler fails
            with pytest.raises(Reject) as rejected:
                deliver_once(handler)
        finally:
            broker_proxy.start()

        # Then the message is handed back to the broker, to come again, and is no dead letter
        assert rejected.value.requeue is True
        assert not DeadLetter.objects.exists()
        # and once the broker answers, the next failure's retry is published
        outcome, _ = deliver_once(handler)
        assert outcome == "retried"


def comes_too_early(message, envelope) -> None:
    raise RetryLater(f"the lines of {message.probe_id} have not arrived yet")


def test_a_message_that_came_too_early_waits_without_using_its_retries_then_they_count():
    with failing_handler(comes_too_early) as handler:
        wire = envelope_of(ProbePinged(probe_id=new_probe_id())).to_wire()

        def deliver(retries: int, **kwargs) -> str:
            kwargs = {"envelope": wire, **kwargs}
            return delivery_run(handler=handler, args=(), kwargs=kwargs, retries=retries)

        # Its first delivery, and a later one within the window, are put off, no retry used
        assert deliver(0) == "deferred"
        recently = timezone.now().isoformat()
        late = settings.MESSAGING_MAX_RETRIES + 3
        assert deliver(late, first_failed_at=recently, deferrals=late) == "deferred"
        assert not DeadLetter.objects.exists()

        # Past the window its retries count: with none left, it is a dead letter
        window = timedelta(seconds=settings.MESSAGING_RETRY_LATER_WINDOW + 1)
        long_ago = (timezone.now() - window).isoformat()
        assert deliver(settings.MESSAGING_MAX_RETRIES, first_failed_at=long_ago) == "dead-lettered"
        letter = DeadLetter.objects.get()
        assert letter.reason == DeadLetter.Reason.RETRIES_EXHAUSTED
        assert "have not arrived yet" in letter.error

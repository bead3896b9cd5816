"""A message for several queues is published once; RabbitMQ copies it into each queue.

One worker consumes both of ProbeFanned's queues, as `celery -A config worker`
(every queue) does: each copy must still run as its own queue's handler,
under its own task id, and a retry must go back to that queue only.
"""

import json
import re
import uuid

import pytest
from celery.signals import before_task_publish
from django.db import transaction
from django.utils import timezone
from kombu import Producer

from config.celery import app
from messaging.dead_letters import dead_letters_redrive
from messaging.fanout import FANNED_OUT_HANDLERS, FANNED_OUT_TASK
from messaging.models import DeadLetter, OutboxMessage
from messaging.publishing import publish
from tests.probe.events import ProbeFanned
from tests.probe.models import ProbeSwitch
from tests.support.broker import purge_queues
from tests.support.probes import deliveries, effects, new_probe_id
from tests.support.waiting import wait_for
from tests.support.workers import worker_env as _worker_env
from tests.support.workers import workers_start as _start

pytestmark = pytest.mark.django_db(transaction=True)

FANNED_QUEUES = ["probe_c", "probe_d"]
FAILING = "probe.fanned_fail_while_switched_on"
RECORD = "probe.fanned_record"
RECORD_AGAIN = "probe.fanned_record_again"
EVERY_HANDLER = {"fanned_fail_while_switched_on", "fanned_record", "fanned_record_again"}


@pytest.fixture(scope="module")
def fan_out_worker(rabbitmq, broker_proxy, django_db_setup, django_db_blocker):
    env = _worker_env(rabbitmq, django_db_blocker)
    purge_queues(FANNED_QUEUES)
    started = _start({"cd": ("probe-cd", FANNED_QUEUES, 1)}, env)
    yield started
    for worker in started.values():
        worker.stop()


@pytest.fixture
def publishes():
    """What this process publishes: (task name, queue, CC header) of each message."""
    seen: list[tuple[str, str, list[str]]] = []

    def record(sender=None, routing_key=None, headers=None, **kwargs):
        seen.append((sender, routing_key, list((headers or {}).get("CC") or [])))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def task_ids(worker, task_name: str) -> set[str]:
    pattern = re.compile(re.escape(task_name) + r"\[([^\]]+)\] succeeded")
    return {m.group(1) for line in worker.lines for m in [pattern.search(line)] if m}


def publish_fanned(probe_id: str, *, failing: bool = False):
    with transaction.atomic():
        if failing:
            ProbeSwitch.objects.create(probe_id=probe_id, is_failing=True)
        return publish(ProbeFanned(probe_id=probe_id))


def test_one_publish_reaches_every_queue_and_each_copy_runs_its_queues_handler(
    fan_out_worker, publishes
):
    worker = fan_out_worker["cd"]
    ids_before = {name: task_ids(worker, name) for name in (FAILING, RECORD, RECORD_AGAIN)}

    # When an event with two handlers on probe_c and one on probe_d is committed
    probe_id = new_probe_id()
    envelope = publish_fanned(probe_id)

    # Then it was published twice, not four times: once for both queues and
    # the event log (RabbitMQ copies it into probe_d and events, named in CC),
    # and once more for the second handler on probe_c
    assert sorted(publishes) == sorted(
        [(FANNED_OUT_TASK, "probe_c", ["probe_d", "events"]), (RECORD_AGAIN, "probe_c", [])]
    )
    # and every handler took effect exactly once
    wait_for(
        lambda: set(effects(probe_id).values_list("handler", flat=True)) == EVERY_HANDLER,
        what="every handler of the fanned-out event to take effect",
    )
    assert effects(probe_id).count() == 3
    assert OutboxMessage.objects.get(message_id=envelope.message_id).dispatched_at is not None

    # each under a task id of its own (the copies share the published message's)
    new_ids = {
        name: task_ids(worker, name) - ids_before[name] for name in (FAILING, RECORD, RECORD_AGAIN)
    }
    assert all(len(ids) == 1 for ids in new_ids.values()), new_ids
    assert len(set.union(*new_ids.values())) == 3


def test_with_fan_out_off_each_subscriber_gets_a_message_of_its_own(
    fan_out_worker, publishes, settings
):
    # Given fan-out switched off (while workers of an older version run)
    settings.MESSAGING_FAN_OUT = False

    # When the event is committed
    probe_id = new_probe_id()
    publish_fanned(probe_id)

    # Then each handler's task was published to its queue (and one to the
    # event log), and each took effect once
    assert sorted(publishes) == sorted(
        [
            (RECORD, "probe_c", []),
            (RECORD_AGAIN, "probe_c", []),
            (FAILING, "probe_d", []),
            ("messaging.event_log", "events", []),
        ]
    )
    wait_for(
        lambda: set(effects(probe_id).values_list("handler", flat=True)) == EVERY_HANDLER,
        what="every handler of the event to take effect",
    )
    assert dict(effects(probe_id).values_list("handler", "routing_key")) == {
        "fanned_record": "probe_c",
        "fanned_record_again": "probe_c",
        "fanned_fail_while_switched_on": "probe_d",
    }


def test_a_copy_that_fails_is_retried_on_its_own_queue_only(fan_out_worker):
    worker = fan_out_worker["cd"]
    handled_before = {
        name: deliveries(worker, name, "handled") for name in (FAILING, RECORD, RECORD_AGAIN)
    }
    duplicates_before = sum(deliveries(worker, n, "duplicate") for n in (RECORD, RECORD_AGAIN))

    # Given the probe_d handler fails for this probe until it is fixed (its
    # copy arrives through CC, with the routing key of probe_c)
    probe_id = new_probe_id()
    envelope = publish_fanned(probe_id, failing=True)
    failed = f"{FAILING} failed on {envelope.message_id}"
    wait_for(lambda: any(failed in line for line in worker.lines), what="the first failure")
    ProbeSwitch.objects.filter(probe_id=probe_id).update(is_failing=False)

    # When its retry succeeds
    wait_for(
        lambda: effects(probe_id, "fanned_fail_while_switched_on").exists(),
        what="the retried copy to take effect",
    )
    wait_for(
        lambda: deliveries(worker, FAILING, "handled") - handled_before[FAILING] == 1,
        what="the retried copy's delivery to be logged",
    )

    # Then the retry was sent to probe_d itself (the routing key RabbitMQ
    # delivered it with), and probe_c's handlers were delivered their copy
    # once each: the retry did not go to every queue of the original message
    retried = effects(probe_id, "fanned_fail_while_switched_on").get()
    assert retried.routing_key == "probe_d"
    assert effects(probe_id).count() == 3
    for name in (RECORD, RECORD_AGAIN):
        assert deliveries(worker, name, "handled") - handled_before[name] == 1
    assert (
        sum(deliveries(worker, n, "duplicate") for n in (RECORD, RECORD_AGAIN)) == duplicates_before
    )
    assert not DeadLetter.objects.filter(message_id=envelope.message_id).exists()


def test_a_copy_that_names_no_handler_for_its_queue_is_dead_lettered_and_can_be_redriven(
    fan_out_worker,
):
    worker = fan_out_worker["cd"]
    duplicates_before = deliveries(worker, RECORD, "duplicate")

    # Given a message published for probe_c and, through CC, probe_d, whose
    # headers name a handler for probe_c only (a buggy or foreign producer)
    probe_id = new_probe_id()
    envelope = {
        "message_id": str(uuid.uuid4()),
        "kind": "event",
        "type": "ProbeFanned",
        "version": 1,
        "occurred_at": timezone.now().isoformat(),
        "correlation_id": "fan-out-test",
        "payload": {"probe_id": probe_id},
    }
    task_id = str(uuid.uuid4())
    with app.connection_for_write() as conn:
        Producer(conn.default_channel).publish(
            json.dumps([[], {"envelope": envelope}, {}]).encode(),
            exchange="",
            routing_key="probe_c",
            content_type="application/json",
            content_encoding="utf-8",
            headers={
                "lang": "py",
                "task": FANNED_OUT_TASK,
                "id": task_id,
                "root_id": task_id,
                "retries": 0,
                "CC": ["probe_d"],
                FANNED_OUT_HANDLERS: {"probe_c": RECORD},
            },
            delivery_mode=2,
        )

    # Then probe_c's copy takes effect, and probe_d's becomes a dead letter
    # that names the queue it arrived on (not the routing key, probe_c's)
    letter = wait_for(
        lambda: DeadLetter.objects.filter(message_id=envelope["message_id"]).first(),
        what="the dead letter of the misaddressed copy",
    )
    assert letter.reason == DeadLetter.Reason.UNKNOWN_TASK
    assert letter.queue == "probe_d"
    assert "arrived on probe_d but names no handler for it" in letter.error
    assert letter.envelope == envelope
    wait_for(lambda: effects(probe_id, "fanned_record").exists(), what="probe_c's copy")
    assert list(effects(probe_id).values_list("handler", "routing_key")) == [
        ("fanned_record", "probe_c")
    ]

    # When it is redriven, it goes to the handler the message names, whose
    # inbox knows it already
    assert dead_letters_redrive(ids=[letter.pk]).redriven == [letter.pk]
    wait_for(
        lambda: deliveries(worker, RECORD, "duplicate") - duplicates_before == 1,
        what="the redriven copy to be skipped as a duplicate",
    )
    assert effects(probe_id).count() == 1

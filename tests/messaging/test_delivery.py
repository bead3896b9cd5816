"""Delivery through RabbitMQ to real worker processes: at least once, in effect once."""

import contextlib
import os
import threading
import time

import psutil
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from config.connections import TRUST_CONNECTIONS_USED_WITHIN
from messaging import transport
from messaging.models import InboxRecord, OutboxMessage
from messaging.outbox import Entry, outbox_dispatch
from messaging.publishing import dispatch_together, publish, send
from messaging.subscriptions import handler_named
from tests.probe.events import ProbePinged, RecordProbe
from tests.support.prerequisites import require
from tests.support.probes import deliveries, effects, new_probe_id, ping
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ALL_PING_EFFECTS = {"record_ping", "echo_ping", "record_echo"}


def wait_for_ping_effects(probe_id: str) -> None:
    wait_for(
        lambda: set(effects(probe_id).values_list("handler", flat=True)) == ALL_PING_EFFECTS,
        what=f"every subscriber of {probe_id} to take effect",
    )


def test_rolled_back_transaction_publishes_nothing(workers):
    # Given a transaction that publishes an event and then fails
    rolled_back = new_probe_id()
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(ProbePinged(probe_id=rolled_back))
        raise RuntimeError("the producer's work failed")

    # When a later event is published, committed and fully handled
    committed = new_probe_id()
    ping(committed)
    wait_for_ping_effects(committed)

    # Then the rolled-back event left no trace: not stored, not delivered
    assert not OutboxMessage.objects.filter(payload__probe_id=rolled_back).exists()
    assert not effects(rolled_back).exists()
    assert not OutboxMessage.objects.filter(payload__probe_id=rolled_back).exists()


def test_committed_event_runs_each_subscriber_once_on_its_own_queue(workers):
    # When an event is committed
    probe_id = new_probe_id()
    envelope = ping(probe_id)

    # Then both subscribers, and the subscriber of what one of them
    # published in turn, take effect exactly once
    wait_for_ping_effects(probe_id)
    time.sleep(0.5)  # room for any extra delivery to show up
    assert sorted(effects(probe_id).values_list("handler", flat=True)) == sorted(ALL_PING_EFFECTS)

    # each on the worker consuming that subscriber's queue
    ran_on = dict(effects(probe_id).values_list("handler", "worker"))
    assert ran_on == {
        "record_ping": workers["a"].hostname,
        "echo_ping": workers["b"].hostname,
        "record_echo": workers["a"].hostname,
    }

    # and the message is marked dispatched, the follow-up event traceable to it
    assert OutboxMessage.objects.get(message_id=envelope.message_id).dispatched_at is not None
    echo = effects(probe_id, "record_echo").get()
    assert echo.correlation_id == envelope.correlation_id
    assert echo.causation_id == envelope.message_id


def test_messages_committed_in_one_dispatch_together_block_go_out_together_at_its_end(workers):
    # Given, inside one block, two events committed by two transactions, and
    # a third whose savepoint rolled back
    first, second, dropped = new_probe_id(), new_probe_id(), new_probe_id()
    both = OutboxMessage.objects.filter(type="ProbePinged", payload__probe_id__in=[first, second])
    with dispatch_together():
        with transaction.atomic():
            publish(ProbePinged(probe_id=first))
            with contextlib.suppress(RuntimeError), transaction.atomic():
                publish(ProbePinged(probe_id=dropped))
                raise RuntimeError("this part of the work failed")
        with transaction.atomic():
            publish(ProbePinged(probe_id=second))

        # Then until the block ends both are committed and wait to be sent
        assert both.count() == 2
        assert not both.filter(dispatched_at__isnull=False).exists()

    # and when it ends both are sent, confirmed and marked dispatched at once
    assert both.filter(dispatched_at__isnull=False).count() == 2
    assert len(set(both.values_list("dispatched_at", flat=True))) == 1
    wait_for_ping_effects(first)
    wait_for_ping_effects(second)
    # while the rolled-back one was neither kept nor sent
    assert not OutboxMessage.objects.filter(payload__probe_id=dropped).exists()
    assert not effects(dropped).exists()


def test_same_message_delivered_twice_takes_effect_once(workers):
    # Given an event that was delivered and handled
    probe_id = new_probe_id()
    envelope = ping(probe_id)
    wait_for_ping_effects(probe_id)

    # When the relay dispatches it again and the same envelope is enqueued
    # twice more, so that two copies may run at the same moment
    skipped_before = deliveries(workers["a"], "probe.record_ping", "duplicate")
    outbox_dispatch([Entry.of(OutboxMessage.objects.get(message_id=envelope.message_id))])
    record_ping = handler_named("probe.record_ping")
    transport.send([transport.Copy(record_ping, envelope.to_wire())] * 2)

    # Then every copy reached the handler's worker and only the first took effect
    wait_for(
        lambda: deliveries(workers["a"], "probe.record_ping", "duplicate") - skipped_before == 3,
        what="three more deliveries of the same message, each skipped as a duplicate",
    )
    assert effects(probe_id, "record_ping").count() == 1
    assert effects(probe_id, "echo_ping").count() == 1
    assert (
        InboxRecord.objects.filter(
            message_id=envelope.message_id, handler="probe.record_ping"
        ).count()
        == 1
    )


def test_event_committed_while_broker_unreachable_is_relayed_when_it_returns(workers, broker_proxy):
    # Given the broker cannot be reached from this process
    broker_proxy.stop()
    try:
        # When an event is committed
        probe_id = new_probe_id()
        started = time.monotonic()
        envelope = ping(probe_id)
        waited = time.monotonic() - started

        # Then the commit stands, the event is kept as pending, nothing is delivered
        row = OutboxMessage.objects.get(message_id=envelope.message_id)
        assert row.dispatched_at is None
        assert row.dispatch_attempts == 1
        assert row.last_dispatch_error
        assert waited < 15, f"publishing with the broker down blocked for {waited:.1f}s"
        time.sleep(1)
        assert not effects(probe_id).exists()
    finally:
        broker_proxy.start()

    # When the broker is back and the relay runs
    call_command("relay_outbox", grace=0)

    # Then the event is delivered to every subscriber, once
    wait_for_ping_effects(probe_id)
    row.refresh_from_db()
    assert row.dispatched_at is not None
    assert effects(probe_id, "record_ping").count() == 1


def test_command_is_handled_once_by_its_one_handler(workers):
    probe_id = new_probe_id()
    with transaction.atomic():
        envelope = send(RecordProbe(probe_id=probe_id))

    effect = wait_for(lambda: effects(probe_id).first(), what="the command's handler")
    assert (effect.handler, effect.worker) == ("record_probe", workers["b"].hostname)
    time.sleep(0.5)  # room for any extra delivery to show up
    assert effects(probe_id).count() == 1
    assert OutboxMessage.objects.get(message_id=envelope.message_id).kind == "command"


def test_dispatch_after_the_broker_dropped_the_kept_connection_goes_out_at_once(
    workers, broker_proxy
):
    # Given this process dispatched an event, keeping its confirm channel open
    first = new_probe_id()
    ping(first)
    wait_for_ping_effects(first)

    # When the broker side of that connection goes away (a restart, a forced
    # close) and the next event is committed
    broker_proxy.stop()
    broker_proxy.start()
    probe_id = new_probe_id()
    envelope = ping(probe_id)

    # Then it is sent on a new connection straight away, not left to the relay
    row = OutboxMessage.objects.get(message_id=envelope.message_id)
    assert row.dispatched_at is not None, row.last_dispatch_error
    assert row.dispatch_attempts == 1
    assert row.last_dispatch_error == ""
    wait_for_ping_effects(probe_id)


def test_a_thread_per_request_server_reuses_one_confirm_channel(workers):
    # Given a dispatch left a confirm channel open
    ping(new_probe_id())
    kept = list(transport._idle)

    # When events are committed one after another, each in a thread of its
    # own (runserver starts one per request)
    probe_ids = [new_probe_id() for _ in range(5)]
    for probe_id in probe_ids:

        def commit(probe_id=probe_id):
            ping(probe_id)
            connection.close()

        thread = threading.Thread(target=commit)
        thread.start()
        thread.join()

    # Then every one was delivered, over the channel already open
    for probe_id in probe_ids:
        wait_for_ping_effects(probe_id)
    assert transport._idle == kept


def test_a_forked_child_does_not_publish_on_its_parents_connection(workers):
    # Given this process keeps a confirm channel open after a dispatch
    ping(new_probe_id())
    assert transport._idle

    # When it forks (a prefork pool, gunicorn), the child starts without it
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not transport._idle else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    # and the parent's channel still works
    probe_id = new_probe_id()
    ping(probe_id)
    wait_for_ping_effects(probe_id)


def _database_backends_of(worker) -> list[int]:
    """The PostgreSQL backends serving this worker's processes."""
    port = int(connection.settings_dict.get("PORT") or 5432)
    local_ports = [
        c.laddr.port
        for pid in [worker.process.pid, *worker.pool_children()]
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", [local_ports]
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_connection_dropped_while_the_worker_was_idle_is_replaced_before_the_next_delivery(
    workers,
):
    require(connection.vendor == "postgresql", "PostgreSQL")
    # Given both workers handled a message, keeping their database connections
    first = new_probe_id()
    ping(first)
    wait_for_ping_effects(first)

    # When the database drops those connections (a restart, a proxy's idle
    # timeout) and the workers sit idle for a while
    backends = [pid for w in workers.values() for pid in _database_backends_of(w)]
    assert backends, "the workers hold no database connection"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [backends])
    time.sleep(TRUST_CONNECTIONS_USED_WITHIN + 0.5)
    seen = {name: len(w.lines) for name, w in workers.items()}

    # Then the next message is handled on new connections at the first try
    probe_id = new_probe_id()
    ping(probe_id)
    wait_for_ping_effects(probe_id)
    for name, worker in workers.items():
        failures = [line for line in worker.lines[seen[name] :] if "retrying" in line]
        assert not failures, failures

"""The event log as a Redis stream: the contract the RabbitMQ stream keeps, and what survives a
Redis killed with kill -9 (on a redis-server each test starts itself)."""

import json
import threading

import pytest
from django.db import transaction

from analytics.aggregates import Aggregates
from analytics.models import ProcessorState, Slot
from analytics.runner import Runner
from messaging.eventlog import LogError, event_log, log_subscriber
from messaging.eventlog.redis import (
    FIELD,
    SEQ_LIMIT,
    RedisLog,
    _client,
    offset_of,
    stream_id,
)
from messaging.publishing import dispatch_together, publish
from messaging.relay import outbox_relay
from tests.messaging.log_contract import LogContract, mine, published_events, read_all
from tests.probe.events import ProbeLogged
from tests.support.envelopes import envelope_of
from tests.support.probes import new_probe_id
from tests.support.redis import RedisServer, free_port
from tests.support.waiting import wait_for


class TestOffsets:
    def test_a_stream_id_is_an_offset_and_back_without_loss_and_in_order(self):
        ids = ["0-1", "1-0", "1-1", f"1-{SEQ_LIMIT - 1}", "2-0", "1796128168000-386"]
        offsets = [offset_of(i) for i in ids]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(ids)
        assert [stream_id(o) for o in offsets] == ids
        assert offset_of(b"1796128168000-386") == 1796128168000 << 20 | 386

    def test_a_sequence_number_an_offset_cannot_hold_is_refused(self):
        with pytest.raises(LogError, match=r"sequence number of 2\*\*20 or more"):
            offset_of(f"5-{SEQ_LIMIT}")


@pytest.mark.django_db(transaction=True)
class TestRedisStream(LogContract):
    @pytest.fixture(autouse=True)
    def _stream(self, rabbitmq, redis_url, settings):
        settings.EVENT_LOG_BACKEND = "redis"
        # The key names the test database: this suite's own stream.
        log = RedisLog()
        log.client.delete(log.key)
        yield
        log.client.delete(log.key)

    def test_no_copy_goes_to_rabbitmqs_stream(self):
        assert log_subscriber() is None

    def test_reads_come_in_batches_and_go_on_from_the_last(self):
        probe_id = new_probe_id()
        with transaction.atomic():
            for seq in range(5):
                publish(ProbeLogged(probe_id=probe_id, seq=seq))
        reader = event_log().reader("first")
        assert len(reader.read(max_entries=3, timeout=0)) == 3
        rest = reader.read(max_entries=3, timeout=0)
        reader.close()
        assert [e.envelope.payload["seq"] for e in rest] == [3, 4]

    def test_head_and_first_bound_what_the_stream_holds(self):
        log = event_log()
        assert (log.head(), log.first()) == (None, None)
        with transaction.atomic():
            publish(ProbeLogged(probe_id=new_probe_id()))
        reader = log.reader("next")
        with transaction.atomic():
            publish(ProbeLogged(probe_id=new_probe_id()))
        [last] = read_all(reader, until_count=1)
        reader.close()
        assert log.head() == last.offset
        assert log.first() is not None and log.first() < last.offset
        assert log.entries_between(None, log.head(), limit=10) == 2
        assert log.entries_between(log.first(), log.head(), limit=10) == 1
        assert log.entries_between(None, log.head(), limit=1) == 2  # the whole stream: XLEN

    def test_an_entry_that_is_no_envelope_is_read_with_its_reason(self):
        log = event_log()
        reader = log.reader("next")
        log.client.xadd(log.key, {FIELD: json.dumps({"type": "Nope"})})
        log.client.xadd(log.key, {FIELD: b"{not json"})
        log.client.xadd(log.key, {"something": "else"})
        invalid, not_json, no_field = read_all(reader, until_count=3)
        reader.close()
        assert invalid.envelope is None
        assert "envelope is invalid" in invalid.error and '"Nope"' in invalid.raw
        assert "not JSON" in not_json.error and not_json.raw == "{not json"
        assert "no envelope field" in no_field.error and "something" in no_field.error

    def test_a_start_that_is_no_position_is_refused(self):
        with pytest.raises(LogError, match="first, next, an offset or a time"):
            event_log().reader("yesterday")

    def test_a_failed_append_leaves_the_rows_undispatched_and_the_relay_appends_them(
        self, settings
    ):
        # given a Redis that cannot be reached when the events are dispatched
        probe_id = new_probe_id()
        reachable = settings.EVENT_LOG_REDIS_URL
        settings.EVENT_LOG_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
        with dispatch_together(), transaction.atomic():
            for seq in range(3):
                publish(ProbeLogged(probe_id=probe_id, seq=seq))
        # then the broker took them, but none counts as dispatched, and each says why
        rows = list(published_events(probe_id))
        assert [row.dispatched_at for row in rows] == [None] * 3
        assert all(row.dispatch_attempts == 1 for row in rows)
        assert all("cannot append to the event log" in row.last_dispatch_error for row in rows)

        # when Redis is back and the relay runs
        settings.EVENT_LOG_REDIS_URL = reachable
        result = outbox_relay(grace_seconds=0)

        # then they are appended, in order, and dispatched
        assert (result.dispatched, result.failed) == (3, 0)
        entries = mine(event_log().reader("first").read(max_entries=10, timeout=0), probe_id)
        assert [e.envelope.payload["seq"] for e in entries] == [0, 1, 2]
        assert not published_events(probe_id).filter(dispatched_at__isnull=True).exists()

    def test_without_a_url_the_log_says_which_setting_is_missing(self, settings):
        settings.EVENT_LOG_REDIS_URL = ""
        with pytest.raises(LogError, match="set EVENT_LOG_REDIS_URL"):
            event_log()


def probe_envelopes(count: int) -> list:
    return [envelope_of(ProbeLogged(probe_id="durable", seq=seq)) for seq in range(count)]


def everything(log: RedisLog) -> list:
    reader = log.reader("first")
    try:
        return [
            (e.offset, e.envelope.message_id) for e in reader.read(max_entries=10000, timeout=0)
        ]
    finally:
        reader.close()


class TestDurability:
    @pytest.fixture
    def server(self, redis_server_program, tmp_path, request):
        started = []

        def start(*, appendonly: bool) -> RedisServer:
            server = RedisServer(tmp_path, appendonly=appendonly).start()
            started.append(server)
            return server

        yield start
        for server in started:
            server.stop()
        _client.cache_clear()

    def test_with_an_append_only_file_fsynced_always_the_log_survives_kill_9(self, server):
        # given a Redis run as the README says, and events appended to it
        redis_server = server(appendonly=True)
        log = RedisLog(url=redis_server.url, key="events")
        log.append(probe_envelopes(200))
        before = everything(log)

        # when it is killed with kill -9 and started again on the same folder
        redis_server.kill()
        redis_server.start()

        # then every entry is there, at its offset
        assert len(before) == 200
        assert everything(log) == before

    @pytest.mark.django_db(transaction=True)
    def test_with_nothing_on_disk_the_log_is_gone_and_the_processor_says_so(self, server, settings):
        # given a Redis like the machine's (no AOF, no snapshots) holding the log,
        # and a processor that has read all of it
        redis_server = server(appendonly=False)
        settings.EVENT_LOG_BACKEND = "redis"
        settings.EVENT_LOG_REDIS_URL = redis_server.url
        log = RedisLog()
        log.append(probe_envelopes(50))
        head = log.head()
        run_until(lambda runner: getattr(runner, "position", None) == head)
        assert ProcessorState.objects.get(processor="aggregates", slot=Slot.LIVE).offset == head

        # when Redis is killed and started again
        redis_server.kill()
        redis_server.start()

        # then the log is empty, and the processor records that its offset is past the head
        assert (log.head(), everything(log)) == (None, [])
        stop, thread = run_in_thread()
        try:
            state = wait_for(
                lambda: ProcessorState.objects.filter(
                    processor="aggregates", last_error__contains="past the log's head"
                ).first(),
                what="the processor to report the lost log",
            )
            assert f"committed offset {head}" in state.last_error
            assert "the log is empty" in state.last_error

            # and once new events come, it says the ones before are gone and reads on
            log.append(probe_envelopes(1))
            new_head = log.head()
            wait_for(
                lambda: ProcessorState.objects.filter(
                    processor="aggregates", last_error__contains="comes after"
                ).exists(),
                timeout=40,
                what="the processor to report the gap",
            )
            # and takes the new entry (it reads on once it has said so)
            wait_for(
                lambda: (
                    ProcessorState.objects.get(processor="aggregates", slot=Slot.LIVE).offset
                    == new_head
                ),
                what="the processor to take the entry after the gap",
            )
        finally:
            stop.set()
            thread.join(timeout=30)


def run_until(condition, timeout: float = 30) -> None:
    """Run the aggregates' runner until ``condition(runner)`` holds, then stop it (committing)."""
    stop = threading.Event()
    runner = Runner(Aggregates, stop=stop)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: condition(runner), timeout=timeout, what="the runner")
    finally:
        stop.set()
        thread.join(timeout=30)


def run_in_thread() -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=Runner(Aggregates, stop=stop).run, daemon=True)
    thread.start()
    return stop, thread

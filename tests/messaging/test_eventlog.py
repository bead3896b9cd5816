"""The event log: every dispatched event, in order, on the real RabbitMQ stream and in the table."""

import json
import threading

import pytest
from django.db import transaction
from django.test import override_settings
from kombu import Connection

from config.celery import app
from messaging.eventlog import LogError, event_log, log_subscriber
from messaging.eventlog.database import TableLog
from messaging.eventlog.rabbitmq import QUEUE, StreamLog, StreamReader, declaration
from messaging.models import OutboxMessage
from messaging.publishing import publish, send
from tests.messaging.log_contract import LogContract, read_all
from tests.probe.events import ProbeLogged, RecordProbe
from tests.support.probes import new_probe_id


@pytest.mark.django_db(transaction=True)
class TestRabbitMQStream(LogContract):
    @pytest.fixture(autouse=True)
    def _stream(self, rabbitmq, settings):
        settings.EVENT_LOG_BACKEND = "rabbitmq"

    def test_head_and_first_bound_what_the_stream_holds(self):
        with transaction.atomic():
            publish(ProbeLogged(probe_id=new_probe_id()))
        log = StreamLog()
        reader = log.reader("next")
        with transaction.atomic():
            publish(ProbeLogged(probe_id=new_probe_id()))
        [last] = read_all(reader, until_count=1)
        reader.close()
        assert log.head() >= last.offset
        assert log.first() is not None and log.first() <= last.offset

    def test_a_stream_written_to_moments_ago_is_not_taken_for_empty(self):
        # given a new stream (whose message count the broker refreshes only
        # every few seconds) with one event in it
        with Connection(app.conf.broker_url) as conn:
            conn.default_channel.queue_delete(QUEUE)
            declaration()(conn.default_channel).declare()
        with transaction.atomic():
            publish(ProbeLogged(probe_id=new_probe_id()))
        # when the log is asked at once where it begins and ends
        first, head = StreamLog().first(), StreamLog().head()
        # then it holds that one entry
        assert first is not None and head == first

    def test_head_and_first_wait_for_a_broker_slow_to_deliver(self, broker_proxy, monkeypatch):
        # given a stream that holds entries
        reader = event_log().reader("next")
        with transaction.atomic():
            publish(ProbeLogged(probe_id=new_probe_id()))
        [last] = read_all(reader, until_count=1)
        reader.close()
        # and a broker that goes silent for a second once a reader has subscribed
        subscribe = StreamReader.__init__

        def subscribed_then_silent(reader, *args, **kwargs):
            subscribe(reader, *args, **kwargs)
            broker_proxy.freeze()
            threading.Timer(1.0, broker_proxy.thaw).start()

        monkeypatch.setattr(StreamReader, "__init__", subscribed_then_silent)
        try:
            # when the log is asked where it begins and ends
            first, head = StreamLog().first(), StreamLog().head()
        finally:
            broker_proxy.thaw()
        # then it waits for the entries instead of calling the stream empty
        assert first is not None and first <= last.offset
        assert head is not None and head >= last.offset

    def test_an_entry_that_is_no_envelope_is_read_with_its_reason(self):
        reader = event_log().reader("next")
        with Connection(app.conf.broker_url) as conn:
            conn.Producer().publish(
                json.dumps([[], {"envelope": {"type": "Nope"}}, {}]),
                exchange="",
                routing_key=QUEUE,
                content_type="application/json",
            )
        [entry] = read_all(reader, until_count=1)
        reader.close()
        assert entry.envelope is None
        assert "envelope is invalid" in entry.error and '"Nope"' in entry.raw


class TestTableLog:
    pytestmark = pytest.mark.django_db

    def rows(self, count: int, probe_id: str) -> list[OutboxMessage]:
        with transaction.atomic():
            for seq in range(count):
                publish(ProbeLogged(probe_id=probe_id, seq=seq))
            send(RecordProbe(probe_id=probe_id))
        return list(OutboxMessage.objects.filter(kind="event").order_by("id"))

    @pytest.fixture(autouse=True)
    def _table(self, settings, monkeypatch):
        settings.EVENT_LOG_BACKEND = "database"
        # Only the table is under test here: nothing goes to a broker.
        monkeypatch.setattr("messaging.outbox.transport.send", lambda copies: None)

    def test_the_log_is_the_outbox_events_in_id_order(self):
        rows = self.rows(4, "p1")
        entries = event_log().reader("first").read(max_entries=100, timeout=0)
        assert [e.offset for e in entries] == [row.pk for row in rows]
        assert [e.envelope.message_id for e in entries] == [row.message_id for row in rows]
        assert TableLog().head() == rows[-1].pk and TableLog().first() == rows[0].pk

    def test_a_reader_starts_at_an_offset_a_time_or_the_next_entry(self):
        rows = self.rows(4, "p2")
        assert [e.offset for e in TableLog().reader(rows[2].pk).read(max_entries=9, timeout=0)] == [
            rows[2].pk,
            rows[3].pk,
        ]
        later = TableLog().reader(rows[3].occurred_at).read(max_entries=9, timeout=0)
        assert [e.offset for e in later] == [rows[3].pk]
        assert TableLog().reader("next").read(max_entries=9, timeout=0) == []

    def test_reads_come_in_batches_and_go_on_from_the_last(self):
        rows = self.rows(5, "p3")
        reader = TableLog().reader("first")
        assert len(reader.read(max_entries=3, timeout=0)) == 3
        assert [e.offset for e in reader.read(max_entries=3, timeout=0)] == [r.pk for r in rows[3:]]

    def test_a_start_that_is_no_position_is_refused(self):
        with pytest.raises(LogError, match="first, next, an offset or a time"):
            TableLog().reader("yesterday")

    def test_no_copy_goes_to_a_stream(self):
        assert log_subscriber() is None


def test_an_unknown_backend_is_a_clear_error():
    with (
        override_settings(EVENT_LOG_BACKEND="kafka"),
        pytest.raises(
            LogError, match="'kafka' is not a log backend: rabbitmq or database or redis"
        ),
    ):
        event_log()

"""What every event-log backend promises, written once; each backend's test class inherits it."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from messaging.eventlog import event_log
from messaging.models import OutboxMessage
from messaging.publishing import publish, send
from tests.probe.events import ProbeLogged, ProbePinged, RecordProbe
from tests.support.probes import new_probe_id


def read_all(reader, *, until_count: int, timeout: float = 10.0) -> list:
    entries = []
    deadline = timezone.now() + timedelta(seconds=timeout)
    while len(entries) < until_count and timezone.now() < deadline:
        entries.extend(reader.read(max_entries=500, timeout=0.5))
    return entries


def mine(entries, probe_id: str) -> list:
    """This test's own entries (not what a worker of another test published in reply)."""
    return [
        e
        for e in entries
        if e.envelope
        and e.envelope.payload.get("probe_id") == probe_id
        and e.envelope.causation_id is None
    ]


def published_events(probe_id: str):
    return OutboxMessage.objects.filter(
        kind="event", payload__probe_id=probe_id, causation_id=None
    ).order_by("id")


class LogContract:
    """Tests a backend's class runs, with EVENT_LOG_BACKEND set to it by its own fixture."""

    def test_every_dispatched_event_is_in_the_stream_in_publish_order_and_commands_are_not(self):
        # given a reader of what is appended from now on
        probe_id = new_probe_id()
        reader = event_log().reader("next")
        try:
            # when events with and without subscribers are published, and a command
            with transaction.atomic():
                for seq in range(20):
                    publish(ProbeLogged(probe_id=probe_id, seq=seq))
                publish(ProbePinged(probe_id=probe_id))
                send(RecordProbe(probe_id=probe_id))
            entries = mine(read_all(reader, until_count=21), probe_id)
        finally:
            reader.close()
        # then each event is there once, in the order published, as its envelope
        assert [e.envelope.type for e in entries] == ["ProbeLogged"] * 20 + ["ProbePinged"]
        assert [e.envelope.payload["seq"] for e in entries[:20]] == list(range(20))
        offsets = [e.offset for e in entries]
        assert offsets == sorted(offsets) and len(set(offsets)) == 21
        published = {str(row.message_id): row.correlation_id for row in published_events(probe_id)}
        assert {str(e.envelope.message_id): e.envelope.correlation_id for e in entries} == published
        # and every row of them counts as dispatched
        assert not published_events(probe_id).filter(dispatched_at__isnull=True).exists()

    def test_a_reader_resumes_at_an_offset_and_at_a_time(self):
        probe_id = new_probe_id()
        before = timezone.now()
        reader = event_log().reader("next")
        with transaction.atomic():
            for seq in range(5):
                publish(ProbeLogged(probe_id=probe_id, seq=seq))
        entries = mine(read_all(reader, until_count=5), probe_id)
        reader.close()
        third = entries[2].offset

        resumed = event_log().reader(third)
        again = mine(read_all(resumed, until_count=3), probe_id)
        resumed.close()
        assert [e.envelope.payload["seq"] for e in again] == [2, 3, 4]

        by_time = event_log().reader(before - timedelta(seconds=1))
        timed = mine(read_all(by_time, until_count=5), probe_id)
        by_time.close()
        assert [e.envelope.payload["seq"] for e in timed] == [0, 1, 2, 3, 4]

        after_all = event_log().reader(timezone.now() + timedelta(seconds=1))
        assert after_all.read(max_entries=10, timeout=0) == []
        after_all.close()

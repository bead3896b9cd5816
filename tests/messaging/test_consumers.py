"""The rules of subscribing, sending and retrying: pure logic, no broker."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings

from messaging.delivery import deferral_delay, retry_delay
from messaging.errors import NoHandler
from messaging.messages import Command, Event
from messaging.publishing import publish, send
from messaging.queues import retry_delays
from messaging.subscriptions import Handler, handlers_for, subscribe
from tests.probe.events import ProbePinged, RecordProbe


class ArchiveProbe(Command):
    probe_id: str


class NobodyListens(Command):
    probe_id: str


class ProbeArchived(Event):
    probe_id: str


def noop(message, envelope) -> None:
    pass


def test_a_command_goes_to_exactly_one_handler():
    subscribe(Handler(noop, (ArchiveProbe,), queue="probe_a", name="probe.archive_one"))

    with pytest.raises(ImproperlyConfigured, match="already has a handler"):
        subscribe(Handler(noop, (ArchiveProbe,), queue="probe_b", name="probe.archive_two"))
    assert [h.name for h in handlers_for(ArchiveProbe)] == ["probe.archive_one"]


def test_an_event_may_have_many_subscribers():
    for name in ("probe.archived_one", "probe.archived_two"):
        subscribe(Handler(noop, (ProbeArchived,), queue="probe_a", name=name))
    assert [h.name for h in handlers_for(ProbeArchived)] == [
        "probe.archived_one",
        "probe.archived_two",
    ]


@pytest.mark.django_db
def test_sending_a_command_nobody_handles_fails_and_writes_nothing():
    from messaging.models import OutboxMessage

    with pytest.raises(NoHandler, match="NobodyListens"):
        send(NobodyListens(probe_id="p"))
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
@override_settings(MESSAGING_MAX_MESSAGE_BYTES=1024)
def test_a_message_over_the_size_limit_is_refused_and_rolls_the_producer_back():
    from messaging.messages import MessageTooLarge
    from messaging.models import OutboxMessage

    with pytest.raises(MessageTooLarge, match="more than the 1024 bytes"), transaction.atomic():
        publish(ProbePinged(probe_id="small"))
        publish(ProbePinged(probe_id="big", note="x" * 1024))
    assert not OutboxMessage.objects.exists()

    publish(ProbePinged(probe_id="fits", note="x" * 500))
    assert OutboxMessage.objects.get().payload["probe_id"] == "fits"


@pytest.mark.django_db
def test_publish_takes_events_and_send_takes_commands():
    with pytest.raises(TypeError, match="use send"):
        publish(RecordProbe(probe_id="p"))
    with pytest.raises(TypeError, match="use publish"):
        send(ProbePinged(probe_id="p"))


@override_settings(MESSAGING_RETRY_BACKOFF=2.0, MESSAGING_RETRY_BACKOFF_MAX=60.0)
@pytest.mark.parametrize("retries", range(8))
def test_retry_delay_grows_exponentially_with_jitter_and_a_cap(retries):
    ceiling = min(60.0, 2.0 * 2**retries)
    delays = {retry_delay(retries) for _ in range(50)}
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(delays) > 1  # jittered, not one fixed value


@override_settings(MESSAGING_RETRY_BACKOFF=2.0, MESSAGING_RETRY_BACKOFF_MAX=300.0)
@pytest.mark.parametrize("retries", range(10))
def test_a_retry_on_the_retry_queues_waits_one_of_their_tiers_within_its_window(retries):
    # Given the tiers of the retry queues for a backoff of 2 s up to 300 s
    tiers = retry_delays(backoff=2.0, backoff_max=300.0)
    assert tiers == (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 150.0, 256.0, 300.0)

    # When retry n picks its delay
    ceiling = min(300.0, 2.0 * 2**retries)
    delays = {retry_delay(retries, tiers=tiers) for _ in range(50)}

    # Then it is a tier between half and all of the ceiling, and more than one when two fit
    assert delays <= set(tiers)
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(delays) > 1


def test_a_deferral_waits_the_shortest_tier_no_shorter_than_asked():
    tiers = (0.1, 0.2, 0.4, 0.5, 0.8, 1.0)

    assert deferral_delay(0.05, tiers=tiers) == 0.1
    assert deferral_delay(0.3, tiers=tiers) == 0.4
    assert deferral_delay(30.0, tiers=tiers) == 1.0
    assert 0.3 <= deferral_delay(0.3) <= 0.45

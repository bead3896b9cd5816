"""The backbone's extension points: what they carry, and that a bad receiver harms nothing."""

import pytest
from django.db import transaction

from messaging.delivery import Outcome, delivery_run
from messaging.models import DeadLetter
from messaging.relay import outbox_relay
from messaging.signals import (
    delivery_finished,
    delivery_handled,
    delivery_retried,
    message_confirmed,
    message_dead_lettered,
    message_published,
    relay_ran,
)
from messaging.subscriptions import Handler
from tests.probe.events import ProbePinged
from tests.support.envelopes import envelope_of
from tests.support.probes import new_probe_id, ping
from tests.support.retries import always_fails, deliver_once, failing_handler

pytestmark = pytest.mark.django_db(transaction=True)

handled_here = Handler(lambda message, envelope: None, (ProbePinged,), "probe_a", "probe.signals")


@pytest.fixture
def received():
    """The keyword arguments each receiver call got, for both signals."""
    calls: list[dict] = []

    def receiver(sender, **kwargs) -> None:
        calls.append(kwargs)

    message_confirmed.connect(receiver, dispatch_uid="test-confirmed")
    delivery_handled.connect(receiver, dispatch_uid="test-handled")
    yield calls
    message_confirmed.disconnect(dispatch_uid="test-confirmed")
    delivery_handled.disconnect(dispatch_uid="test-handled")


def deliver(envelope) -> str:
    return delivery_run(
        handler=handled_here, args=(), kwargs={"envelope": envelope.to_wire()}, retries=0
    )


def test_delivery_handled_is_sent_once_a_delivery_took_effect(received):
    # Given a message for a handler
    envelope = envelope_of(ProbePinged(probe_id=new_probe_id()))

    # When it is delivered twice
    outcomes = [deliver(envelope), deliver(envelope)]

    # Then the first took effect and said so; the duplicate said nothing
    assert outcomes == ["handled", "duplicate"]
    assert [(c["handler"], c["envelope"].message_id) for c in received] == [
        ("probe.signals", envelope.message_id)
    ]


def test_a_receiver_that_fails_changes_nothing_for_the_delivery(caplog):
    # Given a receiver that raises
    def broken(sender, **kwargs) -> None:
        raise RuntimeError("receiver bug")

    delivery_handled.connect(broken, dispatch_uid="test-broken")
    try:
        # When a message is delivered
        outcome = deliver(envelope_of(ProbePinged(probe_id=new_probe_id())))
    finally:
        delivery_handled.disconnect(dispatch_uid="test-broken")

    # Then it was handled all the same, and the failure was logged
    assert outcome == "handled"
    assert "receiver bug" in caplog.text


def test_message_confirmed_is_sent_with_what_the_broker_confirmed(workers, received):
    # When an event is committed (and dispatched as the commit returns)
    envelope = ping(new_probe_id())

    # Then the receiver has heard that the broker confirmed it, once
    confirmed = [e.message_id for call in received for e in call.get("envelopes", [])]
    assert confirmed == [envelope.message_id]


def test_nothing_is_confirmed_for_a_rolled_back_transaction(workers, received):
    # When an event is published in a transaction that rolls back
    with pytest.raises(RuntimeError), transaction.atomic():
        ping(new_probe_id())
        raise RuntimeError("rolled back")

    # Then no receiver heard of it
    assert received == []


def test_delivery_retried_is_sent_once_the_retry_was_published(rabbitmq):
    # Given a receiver of delivery_retried, and a handler that fails
    calls: list[dict] = []

    def receiver(sender, **kwargs) -> None:
        calls.append(kwargs)

    delivery_retried.connect(receiver, dispatch_uid="test-retried")
    try:
        with failing_handler() as failing:
            # When a message is delivered to it for the first time
            outcome, envelope = deliver_once(failing)
    finally:
        delivery_retried.disconnect(dispatch_uid="test-retried")

    # Then its retry went back to the handler's queue, and the receiver heard so
    assert outcome == "retried"
    assert len(calls) == 1
    call = calls[0]
    assert call["handler"] == "probe.always_fails"
    assert call["envelope"].message_id == envelope.message_id
    assert call["queue"] == failing.queue
    assert call["attempt"] == 1
    assert call["countdown"] > 0
    assert call["deferred"] is False
    assert call["deferrals"] == 0


def test_a_delivery_dead_lettered_after_its_last_attempt_sends_no_retry(settings):
    # Given a receiver of delivery_retried, and a handler that fails on its last attempt
    calls: list[dict] = []
    delivery_retried.connect(lambda sender, **kwargs: calls.append(kwargs), dispatch_uid="t-dl")
    envelope = envelope_of(ProbePinged(probe_id=new_probe_id()))
    failing = Handler(always_fails, (ProbePinged,), "probe_a", "probe.fails_for_good")
    try:
        # When it fails once more
        outcome = delivery_run(
            handler=failing,
            args=(),
            kwargs={"envelope": envelope.to_wire()},
            retries=settings.MESSAGING_MAX_RETRIES,
        )
    finally:
        delivery_retried.disconnect(dispatch_uid="t-dl")

    # Then it went to the dead letters, and no retry was announced
    assert outcome == "dead-lettered"
    assert calls == []


@pytest.fixture
def finished():
    """The keyword arguments of each delivery_finished."""
    calls: list[dict] = []
    delivery_finished.connect(
        lambda sender, **kwargs: calls.append(kwargs), dispatch_uid="t-fin", weak=False
    )
    yield calls
    delivery_finished.disconnect(dispatch_uid="t-fin")


def test_delivery_finished_says_what_became_of_every_delivery(finished):
    # Given a message for a handler, and one its filter does not want
    envelope = envelope_of(ProbePinged(probe_id=new_probe_id()))
    picky = Handler(
        lambda message, envelope: None,
        (ProbePinged,),
        "probe_a",
        "probe.picky",
        when=lambda message: message.note == "wanted",
    )

    # When the first is delivered twice, the other once, and something unreadable once
    deliver(envelope)
    deliver(envelope)
    delivery_run(handler=picky, args=(), kwargs={"envelope": envelope.to_wire()}, retries=0)
    delivery_run(handler=handled_here, args=(), kwargs={"envelope": {"no": "envelope"}}, retries=0)

    # Then each delivery was announced once, with its outcome and how long it took
    assert [(c["handler"], c["outcome"]) for c in finished] == [
        ("probe.signals", Outcome.HANDLED),
        ("probe.signals", Outcome.DUPLICATE),
        ("probe.picky", Outcome.FILTERED),
        ("probe.signals", Outcome.DEAD_LETTERED),
    ]
    assert [c["envelope"] and c["envelope"].message_id for c in finished] == [
        envelope.message_id,
        envelope.message_id,
        envelope.message_id,
        None,
    ]
    assert all(0 < c["seconds"] < 10 for c in finished)


def test_message_dead_lettered_carries_the_dead_letter_once_it_is_kept(finished):
    # Given a receiver of message_dead_lettered
    calls: list[dict] = []
    message_dead_lettered.connect(
        lambda sender, **kw: calls.append(kw), dispatch_uid="t-dead", weak=False
    )
    try:
        # When a delivery cannot be read
        delivery_run(handler=handled_here, args=(), kwargs={"envelope": "nope"}, retries=0)
    finally:
        message_dead_lettered.disconnect(dispatch_uid="t-dead")

    # Then the receiver got the recorded row
    [call] = calls
    assert call["dead_letter"] == DeadLetter.objects.get()
    assert call["dead_letter"].handler == "probe.signals"


def test_message_published_is_sent_once_the_producer_committed(workers):
    # Given a receiver of message_published
    calls: list[dict] = []
    message_published.connect(
        lambda sender, **kw: calls.append(kw), dispatch_uid="t-pub", weak=False
    )
    try:
        # When one event is rolled back and another committed
        with pytest.raises(RuntimeError), transaction.atomic():
            ping(new_probe_id())
            raise RuntimeError("rolled back")
        envelope = ping(new_probe_id())
    finally:
        message_published.disconnect(dispatch_uid="t-pub")

    # Then only the committed one was announced
    assert [[e.message_id for e in call["envelopes"]] for call in calls] == [[envelope.message_id]]


def test_relay_ran_is_sent_after_each_run():
    # Given a receiver of relay_ran
    calls: list[dict] = []
    relay_ran.connect(lambda sender, **kw: calls.append(kw), dispatch_uid="t-relay", weak=False)
    try:
        # When the relay runs with nothing to send
        outbox_relay(runner="the test")
    finally:
        relay_ran.disconnect(dispatch_uid="t-relay")

    # Then it said so
    assert calls == [{"signal": relay_ran, "dispatched": 0, "failed": 0, "runner": "the test"}]

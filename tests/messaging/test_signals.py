"""The backbone's extension points: what they carry, and that a bad receiver harms nothing."""

import pytest
from django.db import transaction

from messaging.delivery import delivery_run
from messaging.signals import delivery_handled, message_confirmed
from messaging.subscriptions import Handler
from tests.probe.events import ProbePinged
from tests.support.envelopes import envelope_of
from tests.support.probes import new_probe_id, ping

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

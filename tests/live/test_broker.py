"""Queue depths and consumers from the real RabbitMQ, on one kept connection."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection, Consumer, Exchange, Queue

from live.figures.broker import FILE_SYSTEM_REASON, QueueProbe
from tests.support.redis import free_port
from tests.support.waiting import wait_for


@pytest.fixture
def queue(rabbitmq) -> Iterator[Queue]:
    """A queue of its own on the test broker, holding three messages; deleted afterwards."""
    name = f"live_depth_{uuid.uuid4().hex[:8]}"
    declared = Queue(name, Exchange(name, type="direct"), routing_key=name)
    with Connection(rabbitmq) as connection:
        producer = connection.Producer()
        for n in range(3):
            producer.publish({"n": n}, exchange=name, routing_key=name, declare=[declared])
        channel = connection.default_channel
        wait_for(
            lambda: channel.queue_declare(queue=name, passive=True).message_count == 3,
            what="the broker to hold the three messages",
        )
        yield declared
        declared(connection.default_channel).delete()
        declared.exchange(connection.default_channel).delete()


@pytest.fixture
def probe(rabbitmq) -> Iterator[QueueProbe]:
    probe = QueueProbe(rabbitmq)
    yield probe
    probe.close()


def test_depth_is_the_messages_ready_and_consumers_those_attached(rabbitmq, queue, probe):
    # Given a queue holding three messages and no consumer
    found = probe.read([queue.name]).queues[queue.name]
    assert (found.depth, found.consumers, found.reason) == (3, 0, None)

    # When a consumer takes one and holds it unacknowledged
    with Connection(rabbitmq) as connection:
        channel = connection.channel()
        channel.basic_qos(0, 1, False)
        held = []
        with Consumer(channel, [queue], callbacks=[lambda body, message: held.append(message)]):
            connection.drain_events(timeout=5)

            # Then it counts as a consumer, and the message it holds is not ready
            found = probe.read([queue.name]).queues[queue.name]
            assert (found.depth, found.consumers) == (2, 1)
            assert len(held) == 1


def test_a_queue_the_broker_does_not_have_is_unknown_and_the_next_one_still_read(queue, probe):
    reading = probe.read(["no_such_queue_here", queue.name])

    assert reading.is_available
    missing = reading.queues["no_such_queue_here"]
    assert missing.depth is None
    assert missing.reason.startswith("not on the broker")
    assert reading.queues[queue.name].depth == 3


def test_the_connection_is_kept_between_reads_and_opened_again_once_broken(queue, probe):
    # Given a probe that has read once
    probe.read([queue.name])
    kept = probe._connection

    # When it reads again, it uses the same connection
    probe.read([queue.name])
    assert probe._connection is kept

    # and when that connection broke meanwhile, it opens another and reads all the same
    kept.connection.sock.shutdown(socket.SHUT_RDWR)
    reading = probe.read([queue.name])
    assert reading.is_available
    assert reading.queues[queue.name].depth == 3
    assert probe._connection is not kept


def test_an_unreachable_broker_is_reported_quickly_and_not_asked_again_at_once():
    # Given a broker URL nothing listens on
    probe = QueueProbe(f"amqp://guest:guest@127.0.0.1:{free_port()}//")

    # When it is read, twice
    started = time.monotonic()
    first = probe.read(["orders", "payments"])
    second = probe.read(["orders"])

    # Then both say why, at once, without figures
    assert time.monotonic() - started < 1.5
    assert not first.is_available
    assert first.reason.startswith("broker unreachable: ")
    assert {q.depth for q in first.queues.values()} == {None}
    assert second.reason == first.reason


def test_the_file_system_broker_counts_nothing():
    reading = QueueProbe("filesystem://").read(["orders"])

    assert (reading.is_available, reading.reason) == (False, FILE_SYSTEM_REASON)
    assert reading.queues["orders"].depth is None

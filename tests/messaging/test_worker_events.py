"""messaging.worker_events: a worker's monitoring events leave without anyone waiting on the broker.

Against the real RabbitMQ, directly and through a proxy the test freezes (a
silent broker) or points at a port nobody listens on. The whole worker with
Flower watching: tests/flow/test_flower.py and tests/flow/test_broker_faults.py.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from celery.events import Event
from kombu import Exchange, Queue

from config.celery import app
from messaging.worker_events import EventSender
from tests.support.broker import proxied_url
from tests.support.flower import free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

HOSTNAME = "events-test@host"


class Received:
    """The worker events that reach the broker's event exchange, as Flower's queue gets them."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.events: list[dict] = []

    def numbers(self) -> list[int]:
        """The numbers of this test's heartbeats received so far, in the order they came."""
        while (message := self.queue.get(no_ack=True)) is not None:
            self.events.append(message.payload)
        return [e["n"] for e in self.events if e.get("hostname") == HOSTNAME]


@pytest.fixture
def received(rabbitmq) -> Iterator[Received]:
    with app.connection_for_write(rabbitmq) as connection:
        queue = Queue(
            f"test-events-{uuid.uuid4().hex}",
            Exchange(app.conf.event_exchange, type="topic"),
            routing_key="worker.#",
            auto_delete=True,
            durable=False,
        )(connection.default_channel)
        queue.declare()
        yield Received(queue)


@pytest.fixture
def proxy(rabbitmq) -> Iterator[TcpProxy]:
    parts = urlsplit(rabbitmq)
    proxy = TcpProxy((parts.hostname, parts.port or 5672))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.thaw()
        proxy.stop()


@pytest.fixture
def senders() -> Iterator[list[EventSender]]:
    started: list[EventSender] = []
    yield started
    for sender in started:
        sender.stop(timeout=1)


def start(senders, url: str, **options) -> EventSender:
    sender = EventSender(app, HOSTNAME, url=url, **options)
    sender.start()
    senders.append(sender)
    return sender


def heartbeat(n: int) -> Event:
    return Event("worker-heartbeat", hostname=HOSTNAME, n=n, freq=2.0)


def offering(sender: EventSender, count: int, first: int = 0) -> float:
    """Offer ``count`` heartbeats; how long that took the caller."""
    started = time.monotonic()
    for n in range(first, first + count):
        sender.offer(heartbeat(n), "worker.heartbeat")
    return time.monotonic() - started


def test_events_offered_reach_the_broker_in_order(rabbitmq, received, senders):
    sender = start(senders, rabbitmq)

    offering(sender, 5)

    wait_for(lambda: received.numbers() == [0, 1, 2, 3, 4], what="the five events")
    assert sender.sent == 5
    assert sender.dropped == 0


def test_a_silent_broker_keeps_nobody_waiting_and_what_waited_goes_once_it_answers(
    rabbitmq, received, proxy, senders
):
    # given a sender whose connection (through the proxy) is open
    sender = start(senders, proxied_url(rabbitmq, proxy))
    offering(sender, 1)
    wait_for(lambda: received.numbers() == [0], what="the first event")

    # when the broker goes silent, offering events takes the caller no time
    proxy.freeze()
    assert offering(sender, 200, first=1) < 0.5
    time.sleep(1)  # the sender waits on its publish meanwhile, not the caller

    # then, once it answers again, what waited is sent
    proxy.thaw()
    wait_for(lambda: received.numbers() == list(range(201)), what="every event, in order")


def test_past_its_bound_a_silent_broker_costs_events_not_memory_nor_time(rabbitmq, proxy, senders):
    sender = start(senders, proxied_url(rabbitmq, proxy), capacity=10)
    offering(sender, 1)
    wait_for(lambda: sender.sent == 1, what="the first event sent")

    proxy.freeze()
    assert offering(sender, 100, first=1) < 0.5

    assert sender.pending.qsize() <= 10
    assert sender.dropped >= 89
    # and stopping does not wait for the broker either
    started = time.monotonic()
    sender.stop(timeout=1)
    assert time.monotonic() - started < 3


def test_a_broker_nobody_answers_for_drops_events_says_so_once_and_blocks_nobody(senders, caplog):
    caplog.set_level(logging.WARNING, logger="messaging.worker_events")
    sender = start(senders, f"amqp://guest:guest@127.0.0.1:{free_port()}//", retry_after=0.2)

    assert offering(sender, 20) < 0.5

    wait_for(lambda: sender.dropped >= 3, what="the sender to give up on a few events")
    assert sender.sent == 0
    warnings = [r for r in caplog.records if r.thread == sender.ident]
    assert len(warnings) == 1
    assert "Could not send monitoring events" in warnings[0].getMessage()

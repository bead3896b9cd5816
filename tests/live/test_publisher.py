"""The publisher (live/publisher.py) on a log of the test's own and a real Redis: no broker."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis

from inventory.commands import ReserveInventory
from inventory.events import InventoryReserved, ProductUpdated
from live import channels
from live.publisher import RESUME_WITHIN, Publisher, steps_of
from messaging.eventlog import LogEntry
from tests.support.envelopes import envelope_of
from tests.support.redis import RedisServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db

ORDER = uuid.uuid4()


def reserved(order_id=ORDER) -> LogEntry:
    return envelope_of(InventoryReserved(order_id=order_id, lines=[]), correlation_id=str(order_id))


class ListLog:
    """A log holding ``entries``, offsets 0, 1, …; remembers where each reader started."""

    name = "list"

    def __init__(self, envelopes) -> None:
        self.entries = [LogEntry(offset, envelope) for offset, envelope in enumerate(envelopes)]
        self.starts: list = []

    def reader(self, start):
        self.starts.append(start)
        begin = {"first": 0, "next": len(self.entries)}.get(start, start)
        return _Reader(self.entries[begin:])


class _Reader:
    def __init__(self, entries) -> None:
        self.entries = list(entries)

    def read(self, *, max_entries, timeout):
        batch, self.entries = self.entries[:max_entries], self.entries[max_entries:]
        if not batch:
            time.sleep(min(timeout, 0.05))
        return batch

    def close(self) -> None:
        pass


def test_only_events_of_an_order_become_steps():
    command = envelope_of(ReserveInventory(order_id=ORDER, lines=[]))
    product = envelope_of(ProductUpdated(sku="MUG", name="Mug", price="1", currency="EUR",
                                         available=1))  # fmt: skip
    entries = [LogEntry(0, reserved()), LogEntry(1, command), LogEntry(2, product),
               LogEntry(3, None, error="not an envelope")]  # fmt: skip
    [step] = steps_of(entries)
    assert step["type"] == "InventoryReserved"
    assert step["order_id"] == str(ORDER)
    assert step["title"] == "In stock and set aside for you"


def run_until(publisher: Publisher, condition, what: str) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(condition, timeout=10, what=what)
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture
def own_redis(tmp_path, redis_server_program):
    server = RedisServer(tmp_path, appendonly=False).start()
    yield server
    server.stop()


def test_each_step_goes_to_its_orders_channel_and_to_ops_while_staff_watch(own_redis):
    client = redis.Redis.from_url(own_redis.url)
    client.set(channels.staff_watching_key(), "1")  # as a streaming server does for staff
    other = uuid.uuid4()
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(channels.order_channel(ORDER), channels.ops_channel())
    wait_for(lambda: listener.get_message(timeout=0.1) is None, what="subscribed")
    log = ListLog([reserved(), reserved(other)])
    heard: list[tuple[str, dict]] = []

    def hear():
        while message := listener.get_message(timeout=0.1):
            heard.append((message["channel"].decode(), json.loads(message["data"])))
        return len(heard) >= 3

    publisher = Publisher(log, client, start=0)
    run_until(publisher, hear, "the steps on their channels")

    on_order = [body for channel, body in heard if channel == channels.order_channel(ORDER)]
    on_ops = [body for channel, body in heard if channel == channels.ops_channel()]
    assert [body["step"]["order_id"] for body in on_order] == [str(ORDER)]
    assert {body["step"]["order_id"] for body in on_ops} == {str(ORDER), str(other)}
    assert json.loads(client.get(publisher.position_key))["offset"] == 1
    assert client.exists(channels.publisher_alive_key())


def test_no_step_goes_to_ops_while_no_staff_watch(own_redis):
    client = redis.Redis.from_url(own_redis.url)
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(channels.order_channel(ORDER), channels.ops_channel())
    wait_for(lambda: listener.get_message(timeout=0.1) is None, what="subscribed")
    heard: list[str] = []

    def hear():
        while message := listener.get_message(timeout=0.1):
            heard.append(message["channel"].decode())
        return heard

    run_until(Publisher(ListLog([reserved()]), client, start=0), hear, "the step")
    time.sleep(0.3)
    hear()
    assert heard == [channels.order_channel(ORDER)]


def test_started_again_it_resumes_after_its_position_unless_that_is_stale(own_redis):
    client = redis.Redis.from_url(own_redis.url)
    log = ListLog([reserved() for _ in range(5)])
    publisher = Publisher(log, client)
    client.set(publisher.position_key, json.dumps({"offset": 2, "at": time.time()}))
    run_until(publisher, lambda: log.starts, "the reader")
    stale = time.time() - RESUME_WITHIN - 1
    client.set(publisher.position_key, json.dumps({"offset": 2, "at": stale}))
    run_until(publisher, lambda: len(log.starts) == 2, "the second reader")
    client.set(publisher.position_key, "not json")
    run_until(publisher, lambda: len(log.starts) == 3, "the third reader")
    assert log.starts == [3, "next", "next"]


def test_while_redis_is_down_it_holds_the_batch_and_sends_it_when_redis_returns(own_redis):
    client = redis.Redis.from_url(own_redis.url, socket_connect_timeout=0.5, socket_timeout=1)
    publisher = Publisher(ListLog([reserved()]), client, start=0)
    own_redis.kill()
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(1.5)
        assert publisher.published == 0
        own_redis.start()
        listener = redis.Redis.from_url(own_redis.url).pubsub(ignore_subscribe_messages=True)
        listener.subscribe(channels.order_channel(ORDER))
        message = wait_for(lambda: listener.get_message(timeout=0.2), timeout=10,
                           what="the held step")  # fmt: skip
        assert json.loads(message["data"])["step"]["type"] == "InventoryReserved"
    finally:
        stop.set()
        thread.join(10)

"""The stream processor as it runs: a real ``manage.py stream_processor`` on the RabbitMQ stream.

Orders go in through the API and each app's own worker process takes them
on; every event lands in the stream ``events``, which the processor, a
process of its own on the test database, follows. Killed with ``kill -9``
at random moments and started again, it must end with the figures a
recomputation from the database gives; a poison entry is skipped, with its
offset and reason; SIGTERM stops it cleanly.

Every test starts its processors at the stream's head: the stream outlives
the test database, and holds every earlier run's events.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db import connections
from django.db.models import Count, Sum
from kombu import Connection

from analytics.aggregates import DECLINE_CODES, duration_bucket, minute_of
from analytics.models import MinuteFigure, ProcessorState, SkippedEntry
from messaging.eventlog.rabbitmq import QUEUE, StreamLog
from messaging.models import OutboxMessage
from messaging.relay import outbox_relay
from orders.models import Order, OrderLine
from payments.models import Payment
from tests.flow.conftest import ADDRESS, order_body
from tests.flow.invariants import wait_until_all_closed
from tests.support.paths import ROOT
from tests.support.processes import LoggedProcess
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.workers import APP_QUEUES, worker_env

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

SEED = int(os.environ.get("ANALYTICS_SEED", str(random.SystemRandom().randrange(10**6))))
CARDS = [
    *["4242424242424242"] * 6,
    "4000000000000002",  # declined
    "4000000000009995",  # insufficient funds
    "4000000000000119",  # times out twice, then succeeds
]


class StreamProcessor(LoggedProcess):
    """``python manage.py stream_processor`` in a process of its own, its output kept."""

    def __init__(self, env: dict[str, str], *only: str) -> None:
        self.env = env
        args = [arg for name in only for arg in ("--only", name)]
        super().__init__(
            "stream_processor", [sys.executable, "manage.py", "stream_processor", *args], env
        )

    def wait_running(self, timeout: float = 60) -> None:
        wait_for(
            lambda: (
                self.process.poll() is not None
                or any("Stream processors running" in line for line in self.lines)
            ),
            timeout=timeout,
            what="the stream processor to start",
        )
        assert self.process.poll() is None, self.log()


@pytest.fixture
def stream(rabbitmq, settings):
    settings.EVENT_LOG_BACKEND = "rabbitmq"
    return StreamLog()


@pytest.fixture
def processors(rabbitmq, transactional_db, django_db_blocker, stream):
    """Start stream processors (``at_head`` says where from); whatever runs at the end is killed."""
    env = worker_env(rabbitmq, django_db_blocker)
    started: list[StreamProcessor] = []

    def start(*only: str) -> StreamProcessor:
        processor = StreamProcessor(env, *only)
        started.append(processor)
        return processor

    yield start
    for processor in started:
        processor.kill()


def at_head(stream: StreamLog, *names: str) -> int | None:
    """Give each processor the stream's head as its committed offset; the head."""
    head = stream.head()
    for name in names:
        ProcessorState.objects.update_or_create(
            processor=name, slot="live", defaults={"offset": head}
        )
    return head


def place(client, *, sku: str, workflow: str, quantity: int = 1, **body) -> str:
    response = client.post(
        "/api/orders/",
        order_body(items=[(sku, quantity)], workflow=workflow, **body),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def settle(ids: list[str]) -> None:
    """Every order ended, the workers idle, every event sent (the relay sends what is left)."""

    def all_sent() -> bool:
        outbox_relay(grace_seconds=1)
        return not OutboxMessage.objects.filter(dispatched_at__isnull=True).exists()

    wait_until_all_closed(ids, timeout=150, while_waiting=all_sent)
    wait_until_quiet(APP_QUEUES)
    wait_for(all_sent, what="every message to be sent")


def read_stream(stream: StreamLog, after: int | None, *, until_ids: set, timeout=30.0) -> list:
    """The stream's entries after ``after`` until every message id in ``until_ids`` was read."""
    reader = stream.reader(after + 1 if after is not None else "first")
    entries, seen = [], set()
    deadline = time.monotonic() + timeout
    try:
        while not until_ids <= seen and time.monotonic() < deadline:
            batch = reader.read(max_entries=500, timeout=0.5)
            entries.extend(batch)
            seen.update(e.envelope.message_id for e in batch if e.envelope)
    finally:
        reader.close()
    assert until_ids <= seen, f"{len(until_ids - seen)} events never reached the stream"
    return entries


def test_every_event_of_the_orders_is_in_the_stream_each_after_its_cause(
    client, stock, stale_catalog, stream
):
    # given orders through both workflows that complete, fail payment and run out of stock
    # (orders' copy of the catalog a step behind, so that it takes them all)
    start = stream.head()
    sku = stock(on_hand=4)
    stale_catalog(sku)
    ids = [
        place(client, sku=sku, workflow=workflow, **body)
        for workflow in ("choreography", "orchestration")
        for body in ({}, {}, {"card_number": "4000000000000002"}, {"quantity": 3})
    ]
    # when they have ended
    settle(ids)
    # then every event of their conversations is in the stream
    events = {row.message_id: row for row in OutboxMessage.objects.all()}
    mine = [row for row in events.values() if row.correlation_id in ids]
    event_ids = {row.message_id for row in mine if row.kind == "event"}
    entries = read_stream(stream, start, until_ids=event_ids)
    first_at: dict = {}
    for position, entry in enumerate(entries):
        if entry.envelope:
            first_at.setdefault(entry.envelope.message_id, position)
    assert {row.correlation_id for row in mine} == set(ids)
    # and each event comes after the event it followed from (through the commands between)
    for message_id in event_ids:
        cause = events[message_id].causation_id
        while cause is not None and events[cause].kind == "command":
            cause = events[cause].causation_id
        if cause is not None:
            assert first_at[cause] < first_at[message_id], (
                f"{events[message_id].type} is in the log before its cause {events[cause].type}"
            )
    placed = [row for row in mine if row.type == "OrderPlaced"]
    assert len(placed) == len(ids) and all(row.causation_id is None for row in placed)


def recomputed(ids: list[str]) -> dict:
    """The aggregates from scratch: the events in the outbox, minute by minute."""
    figures: Counter = Counter()
    placed_at = {}
    units = defaultdict(Counter)
    for order_id, sku, quantity in OrderLine.objects.filter(order__in=ids).values_list(
        "order_id", "sku", "quantity"
    ):
        units[str(order_id)][sku] += quantity
    for row in OutboxMessage.objects.filter(kind="event").order_by("occurred_at"):
        minute, payload = minute_of(row.occurred_at), row.payload
        match row.type:
            case "OrderPlaced":
                figures[(minute, "orders_placed", "")] += 1
                placed_at[payload["order_id"]] = row.occurred_at
            case "OrderCompleted":
                figures[(minute, "orders_completed", "")] += 1
                seconds = (row.occurred_at - placed_at[payload["order_id"]]).total_seconds()
                figures[(minute, "completion_seconds", duration_bucket(seconds))] += 1
                figures[(minute, "completion_seconds_sum", "")] += Decimal(f"{seconds:.2f}")
                for sku, quantity in units[payload["order_id"]].items():
                    figures[(minute, "units_sold", sku)] += quantity
            case "OrderCancelled":
                figures[(minute, "orders_cancelled", payload["reason_code"])] += 1
            case "PaymentProcessed":
                figures[(minute, "payments_succeeded", "")] += 1
                figures[(minute, "money_captured", payload["currency"])] += Decimal(
                    payload["amount"]
                )
            case "PaymentFailed":
                figures[(minute, "payments_failed", payload["reason_code"])] += 1
                if payload["reason_code"] in DECLINE_CODES:
                    figures[(minute, "payments_declined", "")] += 1
            case "PaymentRefunded":
                figures[(minute, "money_refunded", payload["currency"])] += Decimal(
                    payload["amount"]
                )
            case "InventoryReservationFailed":
                for line in payload["short"]:
                    figures[(minute, "stock_outs", line["sku"])] += 1
    return {key: Decimal(value) for key, value in figures.items()}


def live_figures() -> dict:
    return {
        (row.minute, row.metric, row.key): row.value
        for row in MinuteFigure.objects.filter(slot="live")
    }


def total(figures: dict, metric: str) -> Counter:
    summed: Counter = Counter()
    for (_, name, key), value in figures.items():
        if name == metric:
            summed[key] += value
    return summed


def assert_totals_match_the_tables(figures: dict, ids: list[str]) -> None:
    """The figures added up are what the orders' and payments' tables say."""
    orders = Order.objects.filter(pk__in=ids)
    assert total(figures, "orders_placed") == {"": len(ids)}
    assert total(figures, "orders_completed") == {"": orders.filter(status="completed").count()}
    cancelled = (
        orders.filter(status="cancelled").values("cancel_reason_code").annotate(n=Count("id"))
    )
    assert total(figures, "orders_cancelled") == {
        c["cancel_reason_code"]: c["n"] for c in cancelled
    }
    payments = Payment.objects.filter(order_id__in=ids)
    captured = payments.filter(status__in=["captured", "refunded"])
    assert total(figures, "money_captured") == {
        c["currency"]: c["s"] for c in captured.values("currency").annotate(s=Sum("amount"))
    }
    assert total(figures, "payments_succeeded") == {"": captured.count()}
    refunded = payments.filter(amount_refunded__gt=0)
    assert total(figures, "money_refunded") == {
        c["currency"]: c["s"]
        for c in refunded.values("currency").annotate(s=Sum("amount_refunded"))
    }
    failed = payments.filter(status="failed").values("failure_code").annotate(n=Count("id"))
    assert total(figures, "payments_failed") == {f["failure_code"]: f["n"] for f in failed}


class Killer(threading.Thread):
    """Until told to stop: start the processor, let it run a random while, SIGKILL it."""

    def __init__(self, rng: random.Random, start) -> None:
        super().__init__(daemon=True)
        self.rng = rng
        self.start_processor = start
        self.current: StreamProcessor = start("aggregates")
        self.done = threading.Event()
        self.killed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.done.is_set():
                self.current.wait_running()
                if self.done.wait(self.rng.uniform(0.2, 3.0)):
                    return
                self.current.kill()
                self.killed += 1
                self.current = self.start_processor("aggregates")
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_killed_at_random_moments_the_processor_ends_with_the_figures_recomputed_from_scratch(
    client, stock, stale_catalog, stream, processors, capsys
):
    rng = random.Random(SEED)
    orders, seconds = 200, 25.0
    skus = [stock(on_hand=rng.randint(orders // 6, orders // 4), price="4.00") for _ in range(3)]
    # Orders takes every order: the short and the unshippable end in the workers
    for sku in skus:
        stale_catalog(sku)
    start = at_head(stream, "aggregates")
    # given a processor killed with SIGKILL at random moments, and started again each time,
    killer = Killer(rng, processors)
    killer.start()
    # while orders go in at a steady pace through both workflows, some refused, some short
    ids = []
    began = time.monotonic()
    for n in range(orders):
        time.sleep(max(0.0, began + n * seconds / orders - time.monotonic()))
        ids.append(
            place(
                client,
                sku=rng.choice(skus),
                quantity=rng.randint(1, 3),
                workflow=rng.choice(["choreography", "orchestration"]),
                card_number=rng.choice(CARDS),
                email=f"analytics{n}@example.com",
                shipping_address=dict(ADDRESS, country=rng.choice(["FR"] * 9 + ["AQ"])),
            )
        )
    killer.done.set()
    killer.join(timeout=60)
    assert killer.error is None, killer.error
    assert killer.killed >= 3, f"killed {killer.killed} times only"
    connections.close_all()
    settle(ids)
    # when the last processor started has caught up with the stream
    head = stream.head()
    wait_for(
        lambda: ProcessorState.objects.get(processor="aggregates", slot="live").offset == head,
        timeout=60,
        what=f"the processor to reach offset {head}:\n{killer.current.log()}",
    )
    # then its figures are those recomputed from the database, minute by minute
    figures = live_figures()
    assert figures == recomputed(ids)
    assert_totals_match_the_tables(figures, ids)
    assert not SkippedEntry.objects.exists()
    # and a replay of the stream from where it began rebuilds the same (exit status 0)
    replayed = subprocess.run(
        [sys.executable, "manage.py", "replay_events", "--projection", "aggregates",
         "--from", str(start + 1)],
        cwd=ROOT, env=killer.current.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "Shadow and live are the same." in replayed.stdout
    with capsys.disabled():
        print(
            f"\nanalytics kill -9 (seed {SEED}): {orders} orders, {killer.killed} kills, "
            f"{len(figures)} figures equal to the recomputation"
        )


def test_a_poison_entry_is_skipped_with_its_offset_and_reason_and_later_orders_are_taken(
    client, stock, stream, processors, rabbitmq
):
    sku = stock(on_hand=5)
    start = at_head(stream, "aggregates")
    processor = processors("aggregates")
    processor.wait_running()
    # given a body that is no task message, published straight to the stream
    with Connection(rabbitmq) as conn:
        conn.Producer().publish(
            b"\x00\xffnot a task message",
            exchange="",
            routing_key=QUEUE,
            content_type="application/octet-stream",
            content_encoding="binary",
        )
    reader = stream.reader(start + 1 if start is not None else "first")
    [poison] = [e for e in reader.read(max_entries=100, timeout=5) if e.envelope is None]
    reader.close()
    # when orders come after it
    ids = [place(client, sku=sku, workflow=w) for w in ("choreography", "orchestration")]
    settle(ids)
    # then the poison is recorded with its offset and reason, and the orders counted
    skipped = wait_for(
        lambda: SkippedEntry.objects.filter(processor="aggregates", offset=poison.offset).first(),
        what=f"the poison entry to be skipped:\n{processor.log()}",
    )
    assert skipped.reason == "malformed"
    assert "not a task message with an envelope" in skipped.error
    assert skipped.raw.startswith("\\0")
    wait_for(
        lambda: total(live_figures(), "orders_completed") == {"": 2},
        what=f"both orders to be counted:\n{processor.log()}",
    )
    assert processor.process.poll() is None


def test_sigterm_stops_the_processors_cleanly_and_promptly(stream, processors):
    at_head(stream, "aggregates", "fraud")
    processor = processors()
    processor.wait_running()
    wait_for(
        lambda: ProcessorState.objects.filter(heartbeat_at__isnull=False).count() == 2,
        what="both processors' first heartbeat",
    )
    began = time.monotonic()
    processor.process.send_signal(signal.SIGTERM)
    status = processor.process.wait(timeout=15)
    elapsed = time.monotonic() - began
    assert status == 0, processor.log()
    assert elapsed < 5, f"took {elapsed:.1f}s to stop"
    assert any("Stream processors stopped" in line for line in processor.lines)
    assert not any("Traceback" in line for line in processor.lines), processor.log()

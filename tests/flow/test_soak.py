"""Load and faults together: a few hundred orders while things break at random moments.

While orders are placed at a steady pace through both workflows (good,
declined, short-of-funds and flaky cards; destinations the carrier refuses;
more demand than stock), a fault thread injects, at moments drawn from a
seeded random generator:

- kill -9 of a pool process of a random app worker (fault 1),
- kill -9 of the main process of an extra worker holding prefetched messages (fault 1),
- RabbitMQ stopped for a few seconds, then started again (fault 3),
- every broker connection closed (fault 4),
- a window in which every message is published twice (fault 7).

Then every order must end, and the books must balance: money, stock and
each effect once. The counts are printed (run with -s to see them).
"""

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connections

from inventory import services as inventory
from messaging.relay import outbox_relay
from orders.models import CatalogItem
from orders.services import OrderItem, order_place
from tests.flow.conftest import ADDRESS, rabbitmqctl
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.support import faults
from tests.support.waiting import wait_for
from tests.support.workers import APP_QUEUES, WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

ORDERS = int(os.environ.get("SOAK_ORDERS", "200"))
SECONDS = float(os.environ.get("SOAK_SECONDS", "30"))
SEED = int(os.environ.get("SOAK_SEED", str(random.SystemRandom().randrange(10**6))))
CARDS = [
    *["4242424242424242"] * 6,
    "4000000000000002",  # declined
    "4000000000009995",  # insufficient funds
    "4000000000000119",  # times out twice, then succeeds
]


class FaultInjector(threading.Thread):
    def __init__(self, rng: random.Random, app_workers, extra_workers, seconds: float):
        super().__init__(daemon=True)
        self.rng = rng
        self.app_workers = app_workers
        self.extra_workers = list(extra_workers)
        self.injected: Counter = Counter()
        self.error: BaseException | None = None
        plan = ["kill pool process"] * 3 + ["stop broker", "close connections", "duplicate"] * 2
        plan += ["kill worker main process"] * len(self.extra_workers)
        self.schedule = sorted((rng.uniform(0, seconds * 0.8), fault) for fault in plan)

    def run(self) -> None:
        started = time.monotonic()
        try:
            for at, fault in self.schedule:
                time.sleep(max(0.0, started + at - time.monotonic()))
                self.inject(fault)
                self.injected[fault] += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def inject(self, fault: str) -> None:
        if fault == "kill pool process":
            worker = self.app_workers[self.rng.choice(APP_QUEUES)]
            for pid in worker.pool_children()[:1]:
                os.kill(pid, signal.SIGKILL)
        elif fault == "kill worker main process":
            os.kill(self.extra_workers.pop().process.pid, signal.SIGKILL)
        elif fault == "stop broker":
            rabbitmqctl("stop_app")
            time.sleep(self.rng.uniform(1, 4))
            rabbitmqctl("start_app")
            rabbitmqctl("await_startup", "--timeout", "120")
        elif fault == "close connections":
            rabbitmqctl("close_all_connections", "soak test")
        elif fault == "duplicate":
            with faults.injected(faults.DUPLICATE_PUBLISH):
                time.sleep(self.rng.uniform(2, 5))


def test_soak_every_order_ends_and_the_books_balance_under_faults(
    app_workers, broker_control, stale_catalog, capsys
):
    rng = random.Random(SEED)
    stock = {}
    for _ in range(3):
        sku = f"SOAK-{uuid.uuid4().hex[:6].upper()}"
        stock[sku] = rng.randint(ORDERS // 4, ORDERS // 2)
        inventory.product_save(sku=sku, name=sku, price=Decimal("4.00"), on_hand=stock[sku])
    wait_for(
        lambda: CatalogItem.objects.filter(sku__in=stock).count() == len(stock),
        what="the soak catalog",
    )
    # Orders takes every order: the short and the unshippable end in the workers
    for sku in stock:
        stale_catalog(sku)
    # Extra workers on random queues, each to be killed with messages in hand.
    extra = [
        WorkerProcess(f"soak-extra-{n}", [rng.choice(APP_QUEUES)], app_workers["orders"].env, 2)
        for n in range(2)
    ]
    for worker in extra:
        worker.wait_ready()
    injector = FaultInjector(rng, app_workers, extra, SECONDS)
    ids = []
    try:
        injector.start()
        started = time.monotonic()
        for n in range(ORDERS):
            time.sleep(max(0.0, started + n * SECONDS / ORDERS - time.monotonic()))
            ids.append(
                order_place(
                    email=f"soak{n}@example.com",
                    items=[OrderItem(rng.choice(list(stock)), rng.randint(1, 3))],
                    shipping_address=dict(ADDRESS, country=rng.choice(["FR"] * 9 + ["AQ"])),
                    card_number=rng.choice(CARDS),
                    workflow=rng.choice(["choreography", "orchestration"]),
                ).pk
            )
        injector.join(timeout=120)
    finally:
        faults.clear(faults.DUPLICATE_PUBLISH)
        for worker in extra:
            worker.stop()
    assert injector.error is None, injector.error
    assert not injector.is_alive()
    connections.close_all()

    # Beat would run the relay; here the test does, while it waits.
    wait_until_all_closed(ids, timeout=240, while_waiting=lambda: outbox_relay(grace_seconds=1))
    tally = assert_books_balance(ids, stock)
    with capsys.disabled():
        print(
            f"\nsoak (seed {SEED}): {tally}, 0 lost, 0 effects twice; "
            f"faults: {dict(sorted(injector.injected.items()))}"
        )

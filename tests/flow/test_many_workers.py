"""Several workers share an app's queue, as worker machines would: per-order safety holds.

Three ``celery -A config worker -Q payments`` processes compete for the
payments queue and two for the orders queue (the orchestrator's), with the
other apps' one each, on the machine's RabbitMQ. Orders of both workflows,
more than the stock covers, are placed at once through the API: whichever
worker takes a message, each paid order is charged once, every refund
matches a cancellation, stock is conserved, and every saga reaches its end.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from inventory import services as inventory
from orders.models import CatalogItem, Order
from tests.flow.conftest import order_body
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.support.broker import purge_queues
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.workers import APP_QUEUES, worker_env, workers_running

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

ORDERS, UNITS = 60, 40
SPECS = {
    **{f"payments-{n}": (f"payments-{n}-many", ["payments"], 1) for n in (1, 2, 3)},
    **{f"orders-{n}": (f"orders-{n}-many", ["orders"], 1) for n in (1, 2)},
    **{
        # Not the suite's own workers' names: two workers of one name share a pidbox queue.
        queue: (f"{queue}-many", [queue], 1)
        for queue in ("inventory", "shipping", "notifications")
    },
}


def place(sku: str, workflow: str) -> str:
    try:
        response = Client().post(
            "/api/orders/",
            order_body(items=[(sku, 1)], workflow=workflow),
            content_type="application/json",
        )
        assert response.status_code == 202, response.content
        return response.json()["id"]
    finally:
        connections.close_all()


def handled(log: str, task_prefix: str) -> int:
    return sum(1 for line in log.splitlines() if "succeeded in" in line and task_prefix in line)


def test_three_payments_workers_and_two_orchestrators_charge_each_order_once(
    rabbitmq, django_db_blocker
):
    purge_queues(APP_QUEUES)
    with workers_running(SPECS, worker_env(rabbitmq, django_db_blocker)) as workers:
        # Given a product with fewer units than orders, as the storefront knows it
        sku = "MANY-1"
        inventory.product_save(sku=sku, name="Shared", price=Decimal("5.00"), on_hand=UNITS)
        wait_for(lambda: CatalogItem.objects.filter(sku=sku, available=UNITS).exists())
        # whose copy in orders promises more, with no later news: inventory alone decides
        far_ahead = timezone.now() + timedelta(days=1)
        CatalogItem.objects.filter(sku=sku).update(available=10_000, as_of=far_ahead)

        # When orders of both workflows are placed at once
        workflows = ["orchestration", "choreography"] * (ORDERS // 2)
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(place, [sku] * ORDERS, workflows))
        wait_until_all_closed(ids, timeout=240)
        wait_until_quiet(APP_QUEUES)

        # Then the books balance: one capture per completed order, a refund per
        # cancelled paid one, stock conserved, each effect once
        tally = assert_books_balance(ids, {sku: UNITS})
        assert tally.completed == UNITS
        cancelled = Order.objects.filter(pk__in=ids, status="cancelled")
        assert set(cancelled.values_list("cancel_reason_code", flat=True)) == {"out_of_stock"}
        # and the queue was shared: each payments worker handled some of it
        shares = {
            name: handled(workers[name].log(100_000), f"{queues[0]}.")
            for name, (_, queues, _) in SPECS.items()
        }
        print(f"\n{tally}; messages handled per worker: {shares}")
        assert all(shares[f"payments-{n}"] > 0 for n in (1, 2, 3)), shares
        assert all(shares[f"orders-{n}"] > 0 for n in (1, 2)), shares

"""The watchdog phase: the order watchdog's sweep among many open orders, and its query's plan.

The table holds ``--watchdog-orders`` open orders (100,000 by default), as
many closed ones, and a few hundred past their deadline. The sweep's
selection is timed as beat runs it (the partial index ``orders_open_by_deadline``)
and, side by side in the same run, with index scans turned off (what a table
scan would cost); then one sweep ends the overdue orders. The plan
(EXPLAIN) is kept in the report, so that it shows which index was read.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from ..cli import Options
from ..environment import fresh
from ..report import fmt
from ..stats import median

INDEX = "orders_open_by_deadline"
# Orders past their deadline: one sweep's worth (the watchdog takes 200 a run).
OVERDUE = 200
# Repetitions of the selection, for its median.
SELECTIONS = 21


def run(options: Options, log_dir: Path, results: dict) -> None:
    from django.utils import timezone

    from orders.watchdog import GRACE, order_watchdog_sweep

    for run in range(options.runs):
        fresh()
        now = timezone.now()
        build_orders(open_orders=options.watchdog_orders, overdue=OVERDUE, now=now)
        query = now - GRACE
        plan = explain(query)
        indexed = time_selection(query)
        scanned = time_selection(query, table_scan=True)
        started = time.perf_counter()
        ended = order_watchdog_sweep(now=now)
        sweep_s = time.perf_counter() - started
        outcome = {
            "open_orders": options.watchdog_orders,
            "overdue": OVERDUE,
            "ended": ended,
            "select_ms": indexed,
            "select_table_scan_ms": scanned,
            "index_over_table_scan": indexed / scanned if indexed and scanned else None,
            "sweep_s": sweep_s,
            "sweep_ms_per_order": 1000 * sweep_s / max(1, ended),
            "plan": plan,
            "uses_index": any(INDEX in line for line in plan),
        }
        results["watchdog"].append(outcome)
        print(
            f"  watchdog run {run + 1}/{options.runs}: selecting {OVERDUE} overdue among "
            f"{fmt(options.watchdog_orders)} open orders took {fmt(indexed, 2)} ms "
            f"({fmt(scanned, 2)} ms by table scan); the sweep ended {ended} in "
            f"{fmt(sweep_s, 2)} s; index used: {fmt(outcome['uses_index'])}",
            flush=True,
        )


def build_orders(*, open_orders: int, overdue: int, now) -> None:
    """Open orders due later (``overdue`` of them past due), and as many closed ones."""
    from orders.models import Order

    def order(index: int, *, status: str, deadline) -> Order:
        return Order(
            id=uuid.uuid4(), email=f"watchdog{index}@example.com", ship_name="Bench",
            ship_line1="1 Bench Road", ship_city="Paris", ship_postal_code="75001",
            ship_country="FR", status=status, total=Decimal("10.00"), currency="EUR",
            card_last4="4242", deadline=deadline,
        )  # fmt: skip

    def later(index: int):
        return now + timedelta(seconds=60 + index % 900)

    batch: list[Order] = []
    for index in range(open_orders):
        past = index < overdue
        deadline = now - timedelta(seconds=60 + index) if past else later(index)
        batch.append(
            order(index, status=("placed", "paid", "reserved")[index % 3], deadline=deadline)
        )
        batch.append(
            order(index, status=("completed", "cancelled")[index % 2], deadline=later(index))
        )
        if len(batch) >= 10_000:
            Order.objects.bulk_create(batch)
            batch = []
    Order.objects.bulk_create(batch)
    _analyze(Order._meta.db_table)


def _analyze(table: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def explain(now) -> list[str]:
    """The plan PostgreSQL runs the sweep's selection by, as EXPLAIN (ANALYZE) prints it."""
    from orders.selectors import orders_overdue_queryset

    text = orders_overdue_queryset(now=now)[:200].explain(analyze=True)
    return text.splitlines()


def time_selection(now, *, table_scan: bool = False) -> float | None:
    """The median milliseconds of the selection; with ``table_scan``, index scans turned off."""
    from django.db import connection, transaction

    from orders.selectors import orders_overdue

    samples: list[float | None] = []
    with transaction.atomic():
        if table_scan:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
                cursor.execute("SET LOCAL enable_indexonlyscan = off")
        for _ in range(SELECTIONS):
            started = time.perf_counter()
            orders_overdue(now=now, limit=200)
            samples.append(1000 * (time.perf_counter() - started))
    return median(samples)

"""The flows phase: every scenario at saturation, then at 25/50/75% of its own saturation.

Each run injects orders, waits until every order completed and every hop is
done, and reads the times from the database (the floors: from what their
last hop reports on the ``bench_done`` queue) and the CPU of every process
of the scenario.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..broker import broker_connection, wait_queues_empty
from ..cli import FLOORS, FLOWS, Options
from ..cpu import cpu_summary, meter_for
from ..environment import fresh
from ..fleet import Fleet
from ..profiling import spy_on, stop_spies
from ..report import fmt
from ..stats import median, percentile
from . import place_orders


def run(options: Options, log_dir: Path, results: dict) -> dict:
    """Both kinds of runs, interleaving the scenarios; returns the workers' memory."""
    fleet = Fleet(options, log_dir)
    try:
        fleet.start(options.scenarios)
        listener = DoneListener() if set(options.scenarios) & set(FLOORS) else None
        try:
            saturation_runs(options, fleet, results, listener)
            latency_runs(options, fleet, results, listener)
            if options.profile is not None:
                for scenario in [s for s in options.scenarios if s in FLOWS]:
                    profile_run(options, fleet, scenario, options.profile, listener)
        finally:
            if listener is not None:
                listener.close()
        return fleet.memory()
    finally:
        fleet.stop()


def saturation_runs(options: Options, fleet: Fleet, results: dict, listener) -> None:
    for run in range(options.runs):
        for scenario in options.scenarios:
            orders = options.orders * (options.floor_factor if scenario in FLOORS else 1)
            print(f"  saturation run {run + 1}/{options.runs}: {scenario}", flush=True)
            outcome = measure(fleet, scenario, orders, 0, listener)
            results[scenario]["saturation"].append(outcome)
            print(
                f"    {fmt(outcome.get('orders_per_s'))} orders/s, "
                f"{fmt(outcome.get('cpu_ms_per_order'))} CPU ms/order",
                flush=True,
            )


def latency_runs(options: Options, fleet: Fleet, results: dict, listener) -> None:
    """Open-loop runs at a share of each scenario's own saturation (the median of its runs).

    The screened scenario runs at ours' rates, so that its latency is ours
    with the fraud check added, at the same load.
    """
    saturation = {
        s: median([r.get("orders_per_s") for r in results[s]["saturation"]])
        for s in options.scenarios
    }
    for run in range(options.runs):
        for level in options.levels:
            for scenario in options.scenarios:
                if not saturation[scenario]:
                    continue
                # Screening's cost is compared with ours at the same load.
                base = saturation.get("ours") if scenario == "screened" else saturation[scenario]
                if not base:
                    continue
                rate = base * level / 100
                orders = max(4, round(rate * options.latency_seconds))
                print(
                    f"  latency run {run + 1}/{options.runs}: {scenario} at {level}% "
                    f"({rate:.1f}/s, {orders} orders)",
                    flush=True,
                )
                outcome = measure(fleet, scenario, orders, rate, listener)
                outcome["level"], outcome["rate"] = level, rate
                results[scenario]["latency"].setdefault(str(level), []).append(outcome)
                print(
                    f"    p50 {fmt(outcome.get('p50_ms'))} ms, p99 {fmt(outcome.get('p99_ms'))} ms",
                    flush=True,
                )


def profile_run(options: Options, fleet: Fleet, scenario: str, folder: Path, listener) -> None:
    """One more saturation run with py-spy attached to every worker process of the scenario."""
    folder.mkdir(parents=True, exist_ok=True)
    spies = []
    for managed in fleet.of(scenario):
        label = f"{scenario}-{managed.name.split('-', 1)[1]}"
        spies.extend(spy_on(managed, label, folder, fleet.log_dir))
    time.sleep(2)
    print(f"  profile run: {scenario} ({len(spies)} processes under py-spy)", flush=True)
    outcome = measure(fleet, scenario, options.orders, 0, listener)
    print(f"    {fmt(outcome.get('orders_per_s'))} orders/s under the profiler", flush=True)
    stop_spies(spies)


def measure(fleet: Fleet, scenario: str, orders: int, rate: float, listener) -> dict:
    """One run: inject, wait until every order completed and every hop is done, read the figures."""
    skus = fresh()
    if scenario == "screened":
        fleet.screening_on()
    try:
        return _measure(fleet, scenario, orders, rate, listener, skus)
    finally:
        if scenario == "screened":
            fleet.screening_off()


def _measure(fleet: Fleet, scenario: str, orders: int, rate: float, listener, skus) -> dict:
    queues = fleet.queues(scenario)
    meter = meter_for(fleet.processes(scenario)).start()
    injected = place_orders(scenario, orders, skus, rate, **fleet.env)
    expected = injected["sent"]
    # Long enough for the relay to send what a dropped broker connection left behind.
    timeout = 40 + 2 * expected / max(rate, 5)
    if scenario in FLOWS:
        times, complete = wait_flow_done(expected, timeout)
        settled = wait_flow_settled(expected, 60) if complete else False
    else:
        times = listener.collect(expected, timeout)
        complete = settled = len(times) >= expected
    settled = wait_queues_empty(queues, 30) and settled
    cpu = meter.stop()
    result = {
        "orders": orders,
        "injected": expected,
        "completed": len(times),
        "complete": complete,
        "settled": settled,
        "injector": injected,
        "cpu": cpu,
        **cpu_summary(cpu, injected["cpu_s"], len(times)),
    }
    if times:
        first = min(t0 for t0, _ in times)
        last = max(t1 for _, t1 in times)
        latencies = sorted(1000 * (t1 - t0) for t0, t1 in times)
        result.update(
            {
                "orders_per_s": len(times) / (last - first) if last > first else None,
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
                "p99_ms": percentile(latencies, 99),
                "max_ms": latencies[-1],
            }
        )
    if scenario in FLOWS:
        result.update(flow_counts(len(times)))
        result["deliveries_by_worker"] = deliveries_by_worker()
    if scenario == "screened":
        result.update(screening_lag())
    if not complete:
        print(f"    ! {scenario}: only {len(times)} of {expected} completed", flush=True)
    return result


class DoneListener:
    """Collects the floors' completion reports from the bench_done queue."""

    def __init__(self):
        from ..doneq import done_queue

        self.conn = broker_connection()
        self.queue = self.conn.SimpleQueue(done_queue())

    def collect(self, count: int, timeout: float) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                message = self.queue.get(timeout=0.5)
            except self.queue.Empty:
                continue
            body = message.payload if isinstance(message.payload, dict) else None
            if body is None:
                body = json.loads(message.body)
            out.append((body["t0"], body["t1"]))
            message.ack()
        return out

    def close(self) -> None:
        self.queue.close()
        self.conn.close()


def wait_flow_done(orders: int, timeout: float) -> tuple[list, bool]:
    """(created/closed times of the completed orders, whether every order completed)."""
    from orders.models import Order

    deadline = time.monotonic() + timeout
    while True:
        rows = list(
            Order.objects.filter(status=Order.Status.COMPLETED).values_list(
                "created_at", "closed_at"
            )
        )
        if len(rows) >= orders or time.monotonic() > deadline:
            # A completed order is closed: closed_at is set.
            times = [(a.timestamp(), b.timestamp()) for a, b in rows if b is not None]
            return times, len(rows) >= orders
        time.sleep(0.2)


def wait_flow_settled(orders: int, timeout: float) -> bool:
    """Every delivery of the order graph done: the last emails sent, the stock shipped."""
    from inventory.models import Reservation
    from notifications.models import SentEmail

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        emails = SentEmail.objects.filter(kind=SentEmail.Kind.COMPLETED).count()
        shipped = Reservation.objects.filter(status=Reservation.Status.SHIPPED).count()
        if emails >= orders and shipped >= orders:
            return True
        time.sleep(0.2)
    return False


def flow_counts(orders: int) -> dict:
    """Messages and rows per order, counted in the database after a run."""
    from django_celery_results.models import TaskResult

    from messaging.models import InboxRecord, OutboxMessage

    if not orders:
        return {}
    return {
        "outbox_rows_per_order": OutboxMessage.objects.count() / orders,
        "inbox_rows_per_order": InboxRecord.objects.count() / orders,
        "task_results_per_order": TaskResult.objects.count() / orders,
    }


def screening_lag() -> dict:
    """How long after an order's OrderPlaced was committed the fraud screen's verdict was.

    The verdict's occurred_at is taken in the processor's batch transaction,
    so it is the stream processor's lag behind the log, transport included.
    """
    from messaging.models import OutboxMessage

    placed = dict(
        OutboxMessage.objects.filter(type="OrderPlaced").values_list("message_id", "occurred_at")
    )
    lags = sorted(
        1000 * (screened_at - placed[cause]).total_seconds()
        for cause, screened_at in OutboxMessage.objects.filter(type="OrderScreened").values_list(
            "causation_id", "occurred_at"
        )
        if cause in placed
    )
    return {
        "screening_lag_p50_ms": percentile(lags, 50),
        "screening_lag_p99_ms": percentile(lags, 99),
        "screened_orders": len(lags),
    }


def deliveries_by_worker() -> dict[str, int]:
    from django.db.models import Count

    from messaging.models import InboxRecord

    out: dict[str, int] = {}
    for row in InboxRecord.objects.values("handler").annotate(n=Count("id")):
        app = row["handler"].split(".", 1)[0]
        out[app] = out.get(app, 0) + row["n"]
    return out

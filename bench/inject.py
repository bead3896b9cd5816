"""The load injector: places orders (or starts floor graphs) as fast as possible or at a fixed rate.

Run by the harness as its own process, with the settings of the scenario
(``BENCH_NAIVE``, ``BENCH_NO_CONFIRMS``), so that its CPU and its
connections are those of a producer (a web process) and nothing else:

    python -m bench.inject MODE --orders N [--rate PER_SECOND] [--skus A,B] [--print-ids]

MODE is ours (choreography), orchestration, naive, celery or kombu. The
rate is an open-loop arrival rate: order i is placed at start + i/rate
whether or not the earlier ones are done. Prints one JSON line at the end;
with ``--print-ids``, also one per order as soon as it is placed
(``{"order_id": ...}``), for the live phase to open the order's page.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
import uuid

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
CARD = "4242 4242 4242 4242"
MODES = ["ours", "screened", "orchestration", "naive", "celery", "kombu"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def placer(mode: str, skus: list[str]):
    """A function that places one order (or starts one floor graph)."""
    if mode == "kombu":
        from . import kombu_floor

        conn = kombu_floor.connect()
        producer = kombu_floor.publisher(conn)
        return lambda: kombu_floor.start(producer, uuid.uuid4().hex, time.time())

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if mode == "celery":
        from .tasks import floor_start

        return lambda: floor_start(uuid.uuid4().hex, time.time())

    from orders.services import OrderItem, order_place

    workflow = "orchestration" if mode == "orchestration" else "choreography"
    rng = random.Random(1)

    def place() -> str:
        order = order_place(
            email="ada@example.com",
            items=[OrderItem(sku=rng.choice(skus), quantity=1)],
            shipping_address=ADDRESS,
            card_number=CARD,
            workflow=workflow,
        )
        return str(order.id)

    return place


def run(mode: str, orders: int, rate: float, skus: list[str], print_ids: bool = False) -> dict:
    place = placer(mode, skus)
    errors = 0
    first_error = ""
    lag_max = 0.0
    cpu0 = cpu_seconds()
    start = time.time()
    for i in range(orders):
        if rate > 0:
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            else:
                lag_max = max(lag_max, -delay)
        try:
            placed = place()
            if print_ids and isinstance(placed, str):
                sys.stdout.write(json.dumps({"order_id": placed}) + "\n")
                sys.stdout.flush()
        except Exception as exc:  # counted and reported, never hidden
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
    end = time.time()
    return {
        "mode": mode,
        "sent": orders - errors,
        "errors": errors,
        "first_error": first_error,
        "t_start": start,
        "t_end": end,
        "achieved_rate": orders / (end - start) if end > start else 0.0,
        "max_lag_s": lag_max,
        "cpu_s": cpu_seconds() - cpu0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--skus", default="")
    parser.add_argument("--print-ids", action="store_true")
    args = parser.parse_args(argv)
    skus = [s for s in args.skus.split(",") if s]
    result = run(args.mode, args.orders, args.rate, skus, args.print_ids)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

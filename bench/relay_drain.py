"""The outbox drain: run the relay (messaging.relay.outbox_relay) until nothing is pending.

    python -m bench.relay_drain [--batch-size N]

What ``manage.py relay_outbox`` does, timed from inside the process so that
Python's and Django's start-up are not counted. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection

    from config.celery import app
    from messaging.models import OutboxMessage
    from messaging.relay import outbox_relay

    # Connect first: the drain is timed, not the handshakes.
    connection.ensure_connection()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
    pending = OutboxMessage.objects.filter(dispatched_at__isnull=True).count()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    dispatched = failed = batches = 0
    while True:
        result = outbox_relay(batch_size=args.batch_size, grace_seconds=0)
        batches += 1
        dispatched += result.dispatched
        failed += result.failed
        if result.failed or not result.dispatched:
            break
    elapsed = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    sys.stdout.write(
        json.dumps(
            {
                "pending_before": pending,
                "dispatched": dispatched,
                "failed": failed,
                "batches": batches,
                "seconds": elapsed,
                "events_per_s": dispatched / elapsed if elapsed else 0.0,
                "cpu_s": cpu,
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()

"""The recovery phase: orders taken with the broker unreachable, then the outbox relay's drain.

The backlog is written as ``publish()`` writes it, pending as if the broker
had been down, and drained by the relay into the real broker
(bench/relay_drain.py, what ``manage.py relay_outbox`` runs).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .. import procs
from ..broker import purge_queues, queue_depths
from ..cli import Options
from ..cpu import meter_for
from ..environment import SKUS, child_env, fresh
from ..report import fmt
from . import place_orders


def run(options: Options, log_dir: Path, results: dict) -> None:
    from django.conf import settings

    from messaging.models import OutboxMessage

    for run in range(options.runs):
        fresh()
        purge_queues([settings.PROBE_QUEUE])
        # 1. Orders taken while the broker is unreachable for the producer
        #    (a closed port): what it costs the producer, and they wait in the outbox.
        down = place_orders("ours", 3, SKUS, CELERY_BROKER_URL=unreachable_broker_url())
        pending = OutboxMessage.objects.filter(dispatched_at__isnull=True).count()
        # 2. The backlog: events written while dispatch could not happen.
        fresh()
        build_backlog(options.backlog)
        drained, cpu = drain(f"relay-{run}", log_dir)
        left = OutboxMessage.objects.filter(dispatched_at__isnull=True).count()
        depth = queue_depths([settings.PROBE_QUEUE])[settings.PROBE_QUEUE]
        servers = cpu["postgres_backends"] + cpu["postgres_ended"] + cpu["postgres_shared"]
        outcome = {
            **drained,
            "left_pending": left,
            "queued": depth,
            "cpu_ms_per_event": 1000
            * (drained["cpu_s"] + servers + cpu["rabbitmq"])
            / max(1, drained["dispatched"]),
            "cpu": cpu,
            "broker_down_orders": down["sent"] + down["errors"],
            "broker_down_errors": down["errors"],
            "broker_down_first_error": down["first_error"],
            "broker_down_s_per_order": (down["t_end"] - down["t_start"]) / max(1, down["sent"]),
            "broker_down_pending_after": pending,
        }
        results["recovery"].append(outcome)
        purge_queues([settings.PROBE_QUEUE])
        print(
            f"  outbox drain run {run + 1}/{options.runs}: {fmt(drained['events_per_s'])} "
            f"events/s ({drained['dispatched']} in {fmt(drained['seconds'])} s); an order with "
            f"the broker unreachable took {fmt(outcome['broker_down_s_per_order'])} s",
            flush=True,
        )


def unreachable_broker_url() -> str:
    """The broker's URL with its address replaced by a closed port on this machine."""
    parts = urlsplit(os.environ["CELERY_BROKER_URL"])
    credentials = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{procs.free_port()}"
    netloc = f"{credentials[0]}@{host}" if len(credentials) == 2 else host
    return urlunsplit(parts._replace(netloc=netloc))


def build_backlog(count: int) -> None:
    """Outbox rows as publish() writes them, left pending as if the broker had been down."""
    from django.utils import timezone

    from messaging.models import OutboxMessage

    from ..probe import BenchPinged, ping_envelope

    then = timezone.now() - timedelta(minutes=5)
    rows = [
        OutboxMessage.from_envelope(ping_envelope(BenchPinged(seq=i, note="backlog"), then))
        for i in range(count)
    ]
    OutboxMessage.objects.bulk_create(rows, batch_size=1000)


def drain(name: str, log_dir: Path) -> tuple[dict, dict]:
    """Run the relay until nothing is pending; its report, and the CPU it and the servers used."""
    argv = [procs.python(), "-m", "bench.relay_drain"]
    relay = procs.Managed(name, argv, child_env(), log_dir)
    meter = meter_for(relay.processes).start()
    relay.process.wait(timeout=1800)
    cpu = meter.stop()
    relay.stop()
    lines = relay.log_path.read_text().strip().splitlines()
    try:
        return json.loads(lines[-1]), cpu
    except (IndexError, ValueError) as exc:
        raise RuntimeError(f"relay drain failed:\n{relay.log()}") from exc

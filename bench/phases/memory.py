"""The memory phase: a worker of our messaging layer before, during and after many messages.

The worker runs the no-op probe handler (bench/probe.py), so what grows or
does not is the backbone: envelope and payload validation, the inbox, Celery.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import procs
from ..broker import broker_connection, purge_queues
from ..cli import Options
from ..cpu import cpu_summary, meter_for
from ..environment import child_env, fresh
from ..report import fmt


def run(options: Options, log_dir: Path, results: dict) -> None:
    """RSS and PSS of the worker after each chunk of handled messages."""
    from django.conf import settings

    fresh()
    purge_queues([settings.PROBE_QUEUE])
    worker = procs.celery_worker("memory-probe", [settings.PROBE_QUEUE], child_env(), log_dir)
    samples: list[dict[str, Any]] = []
    try:
        worker.wait_for_log(procs.READY_MARKER)
        time.sleep(1)

        def sample(handled: int) -> dict:
            rss = procs.rss_mb(worker.processes())
            pss = procs.pss_mb(worker.processes())
            point = {"handled": handled, "rss_mb": rss, "pss_mb": pss}
            samples.append(point)
            return point

        sample(0)
        total = options.memory_messages
        chunk = max(1, min(5000, total // 10 or 1))
        sent = 0
        start = time.perf_counter()
        meter = meter_for(worker.processes).start()
        with broker_connection() as conn, conn.Producer() as producer:
            while sent < total:
                batch = min(chunk, total - sent)
                send_pings(producer, sent, batch)
                sent += batch
                handled = wait_handled(sent, timeout=60 + batch / 20)
                point = sample(handled)
                print(
                    f"  memory: {handled} handled, worker PSS {fmt(point['pss_mb'])} MB "
                    f"(RSS {' + '.join(fmt(x) for x in point['rss_mb'])} MB)",
                    flush=True,
                )
                if handled < sent:
                    break
        cpu = meter.stop()
        elapsed = time.perf_counter() - start
        handled = samples[-1]["handled"]
        results["memory"]["probe_worker"] = {
            "messages": total,
            "handled": handled,
            "samples": samples,
            # PSS of the worker (main process + pool child), RSS of its largest process.
            "start_mb": samples[0]["pss_mb"],
            "end_mb": samples[-1]["pss_mb"],
            "growth_mb": samples[-1]["pss_mb"] - samples[min(1, len(samples) - 1)]["pss_mb"],
            "max_process_rss_mb": max(max(s["rss_mb"] or [0]) for s in samples),
            "messages_per_s": handled / elapsed if elapsed else None,
            "cpu": cpu,
            **{k.replace("order", "message"): v for k, v in cpu_summary(cpu, 0.0, handled).items()},
        }
    finally:
        worker.stop()
        purge_queues([settings.PROBE_QUEUE])


def send_pings(producer, first: int, count: int) -> None:
    """Put ``count`` pings straight on the probe's queue, as its handler's task expects them."""
    from celery import current_app
    from django.conf import settings
    from django.utils import timezone

    from ..probe import BenchPinged, ping_envelope, record_ping

    task = current_app.tasks[record_ping.name]
    for seq in range(first, first + count):
        envelope = ping_envelope(BenchPinged(seq=seq), timezone.now())
        task.apply_async(
            kwargs={"envelope": envelope.to_wire()}, queue=settings.PROBE_QUEUE, producer=producer
        )


def wait_handled(sent: int, timeout: float) -> int:
    """How many pings the worker handled, once it handled ``sent`` or the time is up."""
    from messaging.models import InboxRecord

    from ..probe import record_ping

    deadline = time.monotonic() + timeout
    while True:
        handled = InboxRecord.objects.filter(handler=record_ping.name).count()
        if handled >= sent or time.monotonic() > deadline:
            return handled
        time.sleep(0.5)

"""The benchmark harness: ``python -m bench`` (or ``make bench``).

It starts what it needs (Celery workers per app queue for our flow, the
naive baseline and the bare Celery floor, raw kombu consumers for the
transport floor, gunicorn for the web), measures every scenario several
times, interleaving the scenarios run by run so that each ratio compares
figures taken side by side, and writes docs/benchmarks.md and
docs/benchmarks.json. Every process it started is stopped at the end (by its
own process group); RabbitMQ and PostgreSQL are only read from.

The phases are in bench/phases/, in the order they run: web, recovery,
redrive, stream, flows, observability, live, memory, watchdog, cluster.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

from . import environment, graph, procs
from .broker import purge_queues
from .cli import parse
from .meta import run_meta
from .phases import (
    cluster,
    flows,
    live,
    memory,
    observability,
    recovery,
    redrive,
    stream,
    watchdog,
    web,
)
from .report import write_report
from .summary import summarize


def main(argv: list[str] | None = None) -> int:
    # Killed (make bench interrupted), stop every process started, as on Ctrl-C.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    options = parse(argv)
    began = time.time()
    environment.setup_environment(options)
    environment.check_database()
    print(f"Benchmark ({options.mode}): migrating {environment.database_name()}", flush=True)
    environment.migrate()
    problems = graph.graph_check()
    if problems:
        raise SystemExit("bench/graph.py no longer matches the apps: " + "; ".join(problems))
    # For every process started from here: the kombu floor's cannot read the subscriptions.
    os.environ[graph.ENV] = graph.handed_down()
    purge_queues()
    meta = run_meta(options, argv)
    results: dict = {s: {"saturation": [], "latency": {}} for s in options.scenarios}
    results.update(
        {
            key: {"closed": [], "closed_keyed": [], "closed_wrk": [], "open": []}
            for key in web.WEB_SCENARIOS.values()
        }
    )
    results.update(
        {"recovery": [], "redrive": [], "stream": [], "memory": {}, "watchdog": [], "cluster": {}}
    )
    results["observability"] = {state: [] for state in observability.STATES}
    results["live"] = {"web": {"off": [], "on": []}, "pages": {"push": [], "poll": []}}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    print(f"  process logs in {log_dir}", flush=True)
    fleet_memory: dict = {}
    try:
        if "web" in options.phases:
            print("Web (gunicorn)", flush=True)
            web.run(options, log_dir, results)
        if "recovery" in options.phases:
            print("Recovery (outbox drain)", flush=True)
            recovery.run(options, log_dir, results)
        if "redrive" in options.phases:
            print("Redrive (a group of dead letters)", flush=True)
            redrive.run(options, log_dir, results)
        if "stream" in options.phases:
            print("Stream (the event log's processors on a backlog)", flush=True)
            stream.run(options, log_dir, results)
        if "flows" in options.phases and options.scenarios:
            print("Flows: starting workers", flush=True)
            fleet_memory = flows.run(options, log_dir, results)
        if "observability" in options.phases:
            print("Observability (metrics, tracing and JSON logs on and off)", flush=True)
            observability.run(options, log_dir, results)
        if "live" in options.phases:
            print("Live (the real-time push: pages, idle streams, the web)", flush=True)
            live.run(options, log_dir, results)
        if "memory" in options.phases:
            print("Memory (our messaging layer, no-op handler)", flush=True)
            memory.run(options, log_dir, results)
        if "watchdog" in options.phases:
            print("Watchdog (the order deadline's sweep among many open orders)", flush=True)
            watchdog.run(options, log_dir, results)
        if "cluster" in options.phases:
            print("Cluster (three RabbitMQ nodes, quorum queues, one killed)", flush=True)
            cluster.run(options, log_dir, results)
    finally:
        procs.stop_all()
        with contextlib.suppress(Exception):
            purge_queues()
    meta["duration_s"] = round(time.time() - began, 1)
    summary = summarize(options, results, fleet_memory)
    md_path, json_path = write_report(options.out, meta, summary, results)
    print(f"Wrote {md_path} and {json_path} in {meta['duration_s']} s", flush=True)
    return 0


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)

"""What ``python -m bench`` is asked to do: its options and their parsing."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOWS = ["ours", "screened", "orchestration", "naive"]
FLOORS = ["celery", "kombu"]
SCENARIOS = [*FLOWS, *FLOORS]
PHASES = [
    "web", "recovery", "redrive", "stream", "flows", "observability", "live", "memory", "watchdog",
    "cluster",
]  # fmt: skip
LOAD_LEVELS = [25, 50, 75]
EXPERIMENTS = ["db_reuse", "no_results"]

DESCRIPTION = "The benchmark harness: ``python -m bench`` (or ``make bench``)."


@dataclass
class Options:
    orders: int = 300
    runs: int = 3
    latency_seconds: float = 10.0
    web_seconds: float = 10.0
    web_rate: float = 100.0
    web_concurrency: int = 8
    web_workers: int = 4
    backlog: int = 10_000
    redrive_letters: int = 10_000
    stream_backlog: int = 100_000
    memory_messages: int = 100_000
    watchdog_orders: int = 100_000
    concurrency: int = 1
    floor_factor: int = 4
    live_pages: int = 50
    live_idle: int = 1000
    live_seconds: float = 20.0
    live_hold: float = 20.0
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    phases: list[str] = field(default_factory=lambda: list(PHASES))
    out: Path = ROOT / "docs"
    profile: Path | None = None
    experiments: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=lambda: list(LOAD_LEVELS))
    mode: str = "full"


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    parser.add_argument("--orders", type=int, help="orders per saturation run (default 300)")
    parser.add_argument("--runs", type=int, help="runs of each scenario (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes: about two minutes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it runs")
    parser.add_argument("--latency-seconds", type=float, help="length of each open-loop run")
    parser.add_argument("--web-seconds", type=float, help="length of each web run")
    parser.add_argument("--backlog", type=int, help="outbox backlog to drain (default 10000)")
    parser.add_argument(
        "--redrive-letters", type=int, help="dead letters in the group redriven (default 10000)"
    )
    parser.add_argument(
        "--stream-backlog", type=int, help="entries in the event log's stream (default 100000)"
    )
    parser.add_argument(
        "--memory-messages", type=int, help="messages through the memory worker (default 100000)"
    )
    parser.add_argument(
        "--watchdog-orders",
        type=int,
        help="open orders among which the watchdog sweeps (default 100000)",
    )
    parser.add_argument(
        "--live-pages", type=int, help="order pages open at once in the live phase (default 50)"
    )
    parser.add_argument(
        "--live-idle", type=int, help="idle streams held by one streaming server (default 1000)"
    )
    parser.add_argument(
        "--live-seconds", type=float, help="length of each live pages run (default 20)"
    )
    parser.add_argument(
        "--live-hold", type=float, help="seconds the idle streams are held (default 20)"
    )
    parser.add_argument("--concurrency", type=int, help="pool processes per app worker (1)")
    parser.add_argument("--web-workers", type=int, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)} (default all)"
    )
    parser.add_argument(
        "--phases", help=f"comma-separated subset of {','.join(PHASES)} (default all)"
    )
    parser.add_argument("--out", type=Path, help="where the report goes (default docs/)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also record py-spy profiles of one saturation run per flow into this folder",
    )
    parser.add_argument(
        "--experiment",
        help="comma-separated configuration experiments, for what-if runs only: "
        f"{', '.join(EXPERIMENTS)} (see bench/settings.py)",
    )
    args = parser.parse_args(argv)
    options = Options()
    if args.quick:
        options = Options(
            orders=60, runs=1, latency_seconds=3, web_seconds=3, backlog=2000, redrive_letters=2000,
            stream_backlog=10_000, memory_messages=3000, live_pages=20, live_idle=300,
            live_seconds=5, live_hold=5, watchdog_orders=10_000, mode="quick",
        )  # fmt: skip
    if args.smoke:
        options = Options(
            orders=4, runs=1, latency_seconds=1, web_seconds=1, web_rate=10, web_concurrency=2,
            web_workers=1, backlog=30, redrive_letters=30, stream_backlog=300, memory_messages=20,
            floor_factor=1, levels=[50], live_pages=3, live_idle=20, live_seconds=1.5, live_hold=1,
            watchdog_orders=300, mode="smoke",
        )  # fmt: skip
    for name in (
        "orders", "runs", "latency_seconds", "web_seconds", "backlog", "redrive_letters",
        "stream_backlog", "memory_messages", "live_pages", "live_idle", "live_seconds", "live_hold",
        "watchdog_orders", "concurrency", "web_workers", "out", "profile",
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            setattr(options, name, value)
    if args.scenarios:
        options.scenarios = [s for s in args.scenarios.split(",") if s]
        unknown = set(options.scenarios) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.phases:
        options.phases = [p for p in args.phases.split(",") if p]
    if args.experiment:
        options.experiments = [x for x in args.experiment.split(",") if x]
        unknown = set(options.experiments) - set(EXPERIMENTS)
        if unknown:
            parser.error(f"unknown experiments: {', '.join(sorted(unknown))}")
    return options

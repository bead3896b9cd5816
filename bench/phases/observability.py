"""The observability phase: our flow at saturation with metrics, tracing and JSON logs on, and off.

On: ``METRICS_ENABLED=1``, ``TRACING_ENABLED=1`` with no exporter (the
backbone's spans and Django's instrumentation are made, by OpenTelemetry's
no-op tracer: nothing is recorded or sent) and ``LOG_FORMAT=json``. Off:
``METRICS_ENABLED=0``, ``TRACING_ENABLED=0``, ``LOG_FORMAT=text``. Every
process of the run is told the same: the workers, the relay and the
injector, which places the orders as the web would.

The switches are read when a process starts, so each run starts a fleet of
our workers in that state, measures it (the flows phase's ``measure``, after
a few orders to warm it up) and stops it; only one fleet exists at a time,
since an idle one's relays would still use this database's backends, which
the CPU meter counts. The states take turns, the first of them swapped run
by run.

Both states log at INFO, as production runs (``celery worker -l INFO``): at
the flows phase's WARNING hardly a line is written, and JSON logs would cost
nothing whatever they cost. Both write to the same sink, a file per process
in the run's log folder.
"""

from __future__ import annotations

from pathlib import Path

from ..cli import Options
from ..fleet import Fleet
from ..report import fmt
from .flows import measure

STATES = ["off", "on"]
LOG_LEVEL = "INFO"
SWITCHES = {
    "on": {"METRICS_ENABLED": "1", "TRACING_ENABLED": "1", "LOG_FORMAT": "json"},
    "off": {"METRICS_ENABLED": "0", "TRACING_ENABLED": "0", "LOG_FORMAT": "text"},
}
# The same in both states: no exporter, whatever the harness's own environment names
# (TRACING_ENABLED=1 would otherwise export to it); each worker's metrics on a port of its own.
COMMON = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_SDK_DISABLED": "false",
    "METRICS_WORKER_PORT": "0",
    "LOG_LEVEL": LOG_LEVEL,
}


def state_env(state: str) -> dict[str, str]:
    """What every process of a run in ``state`` is told."""
    return {**COMMON, **SWITCHES[state]}


def warm_up_orders(options: Options) -> int:
    return max(2, options.orders // 20)


def run(options: Options, log_dir: Path, results: dict) -> None:
    """``options.runs`` rounds of a saturation run in each state, in turn."""
    for run in range(options.runs):
        states = STATES if run % 2 == 0 else list(reversed(STATES))
        for state in states:
            print(f"  saturation run {run + 1}/{options.runs}: observability {state}", flush=True)
            outcome = saturation_run(options, log_dir / f"observability-{state}-{run + 1}", state)
            results["observability"][state].append(outcome)
            print(
                f"    {fmt(outcome.get('orders_per_s'))} orders/s, "
                f"{fmt(outcome.get('cpu_ms_per_order'))} CPU ms/order",
                flush=True,
            )


def saturation_run(options: Options, log_dir: Path, state: str) -> dict:
    """Start our workers in ``state``, warm them up, measure one saturation run, stop them."""
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(options, log_dir, env=state_env(state), loglevel=LOG_LEVEL)
    try:
        fleet.start(["ours"])
        measure(fleet, "ours", warm_up_orders(options), 0, None)
        return measure(fleet, "ours", options.orders, 0, None)
    finally:
        fleet.stop()

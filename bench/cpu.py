"""CPU time of a scenario: its own processes, PostgreSQL's and RabbitMQ's, per order."""

from __future__ import annotations

from . import procs
from .environment import database_name


def meter_for(processes) -> procs.CpuMeter:
    """A meter of ``processes`` (a callable listing them) and of the servers they use."""
    database = database_name()
    return procs.CpuMeter(
        {
            "python": processes,
            "postgres_backends": lambda: procs.postgres_processes(database)[0],
            "postgres_shared": lambda: procs.postgres_processes(database)[1],
            "postgres_ended": lambda: procs.postmaster(procs.postgres_processes(database)[1]),
            "rabbitmq": procs.rabbitmq_processes,
        },
        reaped=["postgres_ended"],
        live_only=["postgres_backends"],
    )


def cpu_summary(cpu: dict, extra_python: float, units: int) -> dict:
    postgres = cpu["postgres_backends"] + cpu["postgres_ended"] + cpu["postgres_shared"]
    total = cpu["python"] + extra_python + postgres + cpu["rabbitmq"]
    return {
        "cpu_ms_per_order": 1000 * total / units if units else None,
        "python_ms_per_order": 1000 * (cpu["python"] + extra_python) / units if units else None,
        "postgres_ms_per_order": 1000 * postgres / units if units else None,
        "rabbitmq_ms_per_order": 1000 * cpu["rabbitmq"] / units if units else None,
        # Busy CPU of the whole machine not accounted to any of the above:
        # the harness itself and whatever else runs (another engineer's tests).
        "unaccounted_cpu_s": cpu["system_busy"] - total,
        "window_s": cpu["wall"],
    }

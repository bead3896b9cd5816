"""The worker processes of the flow scenarios, started once and kept for the whole phase."""

from __future__ import annotations

import time
from pathlib import Path

from . import kombu_floor, procs
from .cli import Options
from .environment import SCENARIO_ENV, child_env


class Fleet:
    """One worker per app queue for each scenario (orchestration and screened run on ours).

    The screened scenario is ours with fraud screening on: a payments worker of
    its own (FRAUD_SCREENING=1) takes the payments queue over from ours' for
    its runs, and a stream processor runs beside (``screening_on``).

    ``env`` is told to every process of the fleet, the producer too (the
    injector of ``flows.measure``), after the scenario's own; ``loglevel`` is
    its workers' ``-l``.
    """

    def __init__(
        self,
        options: Options,
        log_dir: Path,
        env: dict[str, str] | None = None,
        loglevel: str = "WARNING",
    ):
        self.options = options
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.loglevel = loglevel
        self.groups: dict[str, list[procs.Managed]] = {}
        self.rss_at_start: dict[str, dict] = {}
        self.screening_payments: procs.Managed | None = None
        self.stream_processor: procs.Managed | None = None

    def start(self, scenarios: list[str]) -> None:
        from django.conf import settings

        started = []
        for scenario in scenarios:
            if scenario in ("orchestration", "screened"):
                continue  # they run on our workers
            group = []
            for app in settings.APP_QUEUES:
                name = f"{scenario}-{app}"
                env = child_env(**{**SCENARIO_ENV[scenario], **self.env})
                if scenario == "kombu":
                    argv = [procs.python(), "-m", "bench.kombu_floor", app]
                    group.append(procs.Managed(name, argv, env, self.log_dir))
                    continue
                queue = {"ours": app, "naive": f"naive_{app}", "celery": f"floor_{app}"}[scenario]
                group.append(
                    procs.celery_worker(
                        name, [queue], env, self.log_dir, self.options.concurrency, self.loglevel
                    )
                )
            if scenario == "ours":
                # Our flow with all its guarantees includes the relay (beat runs
                # it in production): it sends what a failed after-commit
                # dispatch left in the outbox, e.g. when the broker dropped a
                # connection. Its CPU counts as ours.
                argv = [procs.python(), "manage.py", "relay_outbox", "--loop"]
                group.append(procs.Managed("ours-relay", argv, child_env(**self.env), self.log_dir))
                if "screened" in scenarios:
                    env = child_env(**{**self.env, "FRAUD_SCREENING": "1"})
                    self.screening_payments = procs.celery_worker(
                        "screened-payments", ["payments"], env, self.log_dir,
                        self.options.concurrency, self.loglevel,
                    )  # fmt: skip
                    started.append(self.screening_payments)
            self.groups[scenario] = group
            started.extend(group)
        for managed in started:
            if managed.name == "ours-relay":
                managed.wait_for_log("Outbox relay")
            elif managed.name.startswith("kombu-"):
                managed.wait_for_log("ready.")
            else:
                managed.wait_for_log(procs.READY_MARKER)
        time.sleep(1)  # let the pool children finish importing
        if self.screening_payments is not None:
            consumer_move("payments", self.screening_payments, away=True)
        for managed in started:
            self.rss_at_start[managed.name] = {
                "rss_mb": procs.rss_mb(managed.processes()),
                "pss_mb": procs.pss_mb(managed.processes()),
            }

    def of(self, scenario: str) -> list[procs.Managed]:
        if scenario == "screened":
            ours = [m for m in self.groups["ours"] if m.name != "ours-payments"]
            extra = [self.screening_payments, self.stream_processor]
            return ours + [m for m in extra if m is not None]
        return self.groups["ours" if scenario == "orchestration" else scenario]

    def screening_on(self) -> None:
        """Ours with fraud screening: an empty log, a stream processor, the screening payments.

        The processor's velocity limits are out of reach (the injector's
        orders all come from one customer): every order is cleared, the happy
        path whose cost is measured.
        """
        from .stream_backlog import stream_empty

        stream_empty()
        env = child_env(
            **{**self.env, "FRAUD_MAX_ORDERS": "100000000", "FRAUD_MAX_DECLINES": "100000000"}
        )
        argv = [procs.python(), "manage.py", "stream_processor", "--only", "fraud"]
        self.stream_processor = procs.Managed("screened-stream", argv, env, self.log_dir)
        wait_processor_running("fraud", self.stream_processor)
        ours_payments = next(m for m in self.groups["ours"] if m.name == "ours-payments")
        assert self.screening_payments is not None, "start() started it"
        consumer_move("payments", ours_payments, away=True)
        consumer_move("payments", self.screening_payments, away=False)

    def screening_off(self) -> None:
        ours_payments = next(m for m in self.groups["ours"] if m.name == "ours-payments")
        assert self.screening_payments is not None, "start() started it"
        consumer_move("payments", self.screening_payments, away=True)
        consumer_move("payments", ours_payments, away=False)
        if self.stream_processor is not None:
            self.stream_processor.stop()
            self.stream_processor = None

    def processes(self, scenario: str):
        return lambda: [p for m in self.of(scenario) for p in m.processes()]

    def queues(self, scenario: str) -> list[str]:
        from django.conf import settings

        apps = settings.APP_QUEUES
        return {
            "ours": apps,
            "screened": apps,
            "orchestration": apps,
            "naive": [f"naive_{a}" for a in apps],
            "celery": [f"floor_{a}" for a in apps],
            "kombu": [kombu_floor.queue(a).name for a in apps],
        }[scenario]

    def memory(self) -> dict[str, dict]:
        """Each worker's memory at start and now (main process + pool children)."""
        out = {}
        for group in self.groups.values():
            for managed in group:
                start = self.rss_at_start.get(managed.name, {})
                out[managed.name] = {
                    "start_rss_mb": start.get("rss_mb"),
                    "start_pss_mb": start.get("pss_mb"),
                    "end_rss_mb": procs.rss_mb(managed.processes()),
                    "end_pss_mb": procs.pss_mb(managed.processes()),
                }
        return out

    def stop(self) -> None:
        started = [m for group in self.groups.values() for m in group]
        started += [m for m in (self.screening_payments, self.stream_processor) if m is not None]
        procs.stop_together(started)


def wait_processor_running(name: str, managed: procs.Managed, timeout: float = 60) -> None:
    """Until the processor's first heartbeat is committed (it logs nothing at WARNING)."""
    from analytics.models import ProcessorState

    deadline = time.monotonic() + timeout
    while not ProcessorState.objects.filter(processor=name, heartbeat_at__isnull=False).exists():
        if managed.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{managed.name} did not start:\n{managed.log()}")
        time.sleep(0.1)


def consumer_move(queue: str, worker: procs.Managed, *, away: bool) -> None:
    """Take a worker off a queue, or put it back on (Celery's remote control)."""
    import socket

    from config.celery import app

    destination = [f"{worker.name}@{socket.gethostname()}"]
    with app.connection_for_write() as connection:
        control = app.control.cancel_consumer if away else app.control.add_consumer
        replies = control(queue, destination=destination, reply=True, connection=connection)
    if not replies:
        raise RuntimeError(f"{worker.name} did not answer the remote control")

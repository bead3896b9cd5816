"""The worker processes of the flow scenarios, started once and kept for the whole phase."""

from __future__ import annotations

import time
from pathlib import Path

from . import kombu_floor, procs
from .cli import Options
from .environment import SCENARIO_ENV, child_env


class Fleet:
    """One worker per app queue for each scenario (orchestration runs on ours)."""

    def __init__(self, options: Options, log_dir: Path):
        self.options = options
        self.log_dir = log_dir
        self.groups: dict[str, list[procs.Managed]] = {}
        self.rss_at_start: dict[str, dict] = {}

    def start(self, scenarios: list[str]) -> None:
        from django.conf import settings

        started = []
        for scenario in scenarios:
            if scenario == "orchestration":
                continue  # it runs on our workers
            group = []
            for app in settings.APP_QUEUES:
                name = f"{scenario}-{app}"
                env = child_env(**SCENARIO_ENV[scenario])
                if scenario == "kombu":
                    argv = [procs.python(), "-m", "bench.kombu_floor", app]
                    group.append(procs.Managed(name, argv, env, self.log_dir))
                    continue
                queue = {"ours": app, "naive": f"naive_{app}", "celery": f"floor_{app}"}[scenario]
                group.append(
                    procs.celery_worker(name, [queue], env, self.log_dir, self.options.concurrency)
                )
            if scenario == "ours":
                # Our flow with all its guarantees includes the relay (beat runs
                # it in production): it sends what a failed after-commit
                # dispatch left in the outbox, e.g. when the broker dropped a
                # connection. Its CPU counts as ours.
                argv = [procs.python(), "manage.py", "relay_outbox", "--loop"]
                group.append(procs.Managed("ours-relay", argv, child_env(), self.log_dir))
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
        for managed in started:
            self.rss_at_start[managed.name] = {
                "rss_mb": procs.rss_mb(managed.processes()),
                "pss_mb": procs.pss_mb(managed.processes()),
            }

    def of(self, scenario: str) -> list[procs.Managed]:
        return self.groups["ours" if scenario == "orchestration" else scenario]

    def processes(self, scenario: str):
        return lambda: [p for m in self.of(scenario) for p in m.processes()]

    def queues(self, scenario: str) -> list[str]:
        from django.conf import settings

        apps = settings.APP_QUEUES
        return {
            "ours": apps,
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
        for group in self.groups.values():
            for managed in group:
                managed.stop()

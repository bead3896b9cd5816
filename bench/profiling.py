"""py-spy profiles of the processes the harness started (``python -m bench --profile DIR``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from . import procs
from .environment import child_env


def spy_on(managed: procs.Managed, label: str, folder: Path, log_dir: Path) -> list:
    """py-spy recording each process of a managed process (collapsed stacks, wall clock)."""
    spies = []
    for process in managed.processes():
        argv = [
            str(Path(procs.python()).with_name("py-spy")), "record", "--pid", str(process.pid),
            "--rate", "250", "--format", "raw", "--nonblocking",
            "-o", str(folder / f"{label}-{process.pid}.txt"),
        ]  # fmt: skip
        spies.append(procs.Managed(f"py-spy-{label}-{process.pid}", argv, child_env(), log_dir))
    return spies


def stop_spies(spies: list) -> None:
    for spy in spies:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(spy.pid, signal.SIGINT)
    for spy in spies:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.process.wait(timeout=30)
        spy.stop()

"""A command the tests run in a process of its own: its output kept for a failure's report."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading

from tests.support.paths import ROOT


class LoggedProcess:
    """``arguments`` run from the checkout in a process group of its own, its lines kept."""

    def __init__(self, name: str, arguments: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            arguments, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def log(self, last: int = 200) -> str:
        return "\n".join(self.lines[-last:])

    @property
    def is_running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group: nothing it started outlives it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, as an operator stops it; SIGKILL if it is not gone in time. Its status."""
        self.terminate()
        return self.finish(timeout)

    def terminate(self) -> None:
        """SIGTERM, without waiting: several processes then stop at once (``finish`` each)."""
        if self.is_running:
            self.process.send_signal(signal.SIGTERM)

    def finish(self, timeout: float = 10) -> int | None:
        """Wait for a process told to stop; SIGKILL if it is not gone in time. Its status."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self.kill()
        return self.process.returncode

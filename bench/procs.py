"""Processes the harness starts (each in its own process group), and what it reads of others.

The harness only ever signals the processes it started, by their process
group. Of the servers (RabbitMQ, PostgreSQL) it only reads CPU times.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
READY_MARKER = "bench worker ready"

_started: list[Managed] = []


class Managed:
    """A subprocess in a process group of its own, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(  # noqa: S603
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _started.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_for_log(self, marker: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log()}")
            time.sleep(0.1)

    def wait_for_port(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} did not listen on {port}:\n{self.log()}"
                    ) from exc
                time.sleep(0.1)

    def processes(self) -> list[psutil.Process]:
        """The process and its descendants (a worker's pool children)."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        # The group may still hold a pool child: end it too, and only it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._log.close()
        if self in _started:
            _started.remove(self)


def stop_together(managed: Iterable[Managed | None]) -> None:
    """Stop processes side by side: each is told to stop, then each is waited for in turn."""
    running = [one for one in managed if one is not None]
    for one in running:
        if one.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(one.pid, signal.SIGTERM)
    for one in running:
        one.stop()


def stop_all() -> None:
    for managed in list(reversed(_started)):
        managed.stop(timeout=10)


atexit.register(stop_all)


def python() -> str:
    return sys.executable


def celery_worker(
    name: str,
    queues: list[str],
    env: dict[str, str],
    log_dir: Path,
    concurrency: int = 1,
    loglevel: str = "WARNING",
) -> Managed:
    argv = [
        python(), "-m", "celery", "-A", "config", "worker", "-n", f"{name}@%h",
        "-Q", ",".join(queues), "-c", str(concurrency), "-l", loglevel,
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    return Managed(name, argv, env, log_dir)


def run_to_end(what: str, argv: list[str], env: dict[str, str]) -> dict:
    """Run a program (an injector, a load generator) to its end; the JSON line it prints last."""
    done = subprocess.run(  # noqa: S603
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- reading other processes ----------------------------------------------------


def _title(process: psutil.Process) -> str:
    try:
        cmdline = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""
    return " ".join(cmdline)


def postgres_processes(database: str) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(backends connected to this database, the server's shared processes).

    A backend's title reads "postgres: 15/main: USER DATABASE HOST(PORT) STATE".
    Backends of other databases (another engineer's tests) are left out.
    """
    backends, shared = [], []
    for process in psutil.process_iter(["name", "username"]):
        if process.info["name"] != "postgres" and process.info["username"] != "postgres":
            continue
        title = _title(process)
        if not title:
            continue
        if not title.startswith("postgres:"):
            shared.append(process)  # the postmaster
            continue
        rest = title.split(": ", 2)[-1].split()
        if len(rest) >= 3 and "(" in rest[2]:
            if rest[1] == database:
                backends.append(process)
        elif "autovacuum worker" not in title:
            shared.append(process)
    return backends, shared


def rabbitmq_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"]


def postmaster(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """PostgreSQL's main process, whose reaped children's CPU counts the backends that ended.

    Celery closes its database connections after every task, so most
    backends live for one task and end between two polls of the meter.
    """
    return [p for p in processes if not _title(p).startswith("postgres:")]


def _cpu(process: psutil.Process, reaped: bool = False) -> float | None:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if reaped:
        return times.children_user + times.children_system
    return times.user + times.system


class CpuMeter:
    """CPU seconds used by groups of processes between start() and stop().

    Polls every ``interval`` seconds, so processes that start (a new database
    backend) or end meanwhile are counted for the time it saw them; a process
    that started after start() counts from zero.
    """

    def __init__(
        self,
        groups: dict[str, Callable[[], Iterable[psutil.Process]]],
        interval: float = 0.25,
        reaped: Iterable[str] = (),
        live_only: Iterable[str] = (),
    ):
        self.groups = groups
        # Groups counted by the CPU of their processes' ended children.
        self.reaped = set(reaped)
        # Groups whose processes count only if still alive at stop() (an
        # ended one is counted by its parent's reaped children instead).
        self.live_only = set(live_only)
        self.interval = interval
        self._first: dict[tuple[str, int, float], float] = {}
        self._last: dict[tuple[str, int, float], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        for group, select in self.groups.items():
            for process in select():
                cpu = _cpu(process, reaped=group in self.reaped)
                if cpu is None:
                    continue
                try:
                    key = (group, process.pid, process.create_time())
                except psutil.Error:
                    continue
                if key not in self._first:
                    self._first[key] = cpu if key[2] < self._t0 else 0.0
                self._last[key] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def start(self) -> CpuMeter:
        self._t0 = time.time()
        self._system0 = psutil.cpu_times()
        self._poll()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._poll()
        system1 = psutil.cpu_times()
        totals = dict.fromkeys(self.groups, 0.0)
        for key, last in self._last.items():
            if key[0] in self.live_only and not _alive(key[1], key[2]):
                continue
            totals[key[0]] += max(0.0, last - self._first[key])
        busy = sum(
            getattr(system1, f) - getattr(self._system0, f)
            for f in ("user", "nice", "system", "irq", "softirq", "steal")
            if hasattr(system1, f)
        )
        totals["system_busy"] = busy
        totals["wall"] = time.time() - self._t0
        return totals


def _alive(pid: int, create_time: float) -> bool:
    try:
        process = psutil.Process(pid)
        return process.create_time() == create_time and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def pss_mb(processes: Iterable[psutil.Process]) -> float:
    """Proportional set size, summed: a forked pool child's pages shared with its
    parent are counted once, where RSS counts them in each process."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error, AttributeError):
            total += process.memory_full_info().pss / 2**20
    return total


def rss_mb(processes: Iterable[psutil.Process]) -> list[float]:
    out = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            out.append(process.memory_info().rss / 2**20)
    return out

"""Real worker processes: the project's own ``celery -A config worker``, on the test database."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from config.celery import app
from tests.support.database import database_url, is_test_database
from tests.support.processes import LoggedProcess

APP_QUEUES = ["orders", "payments", "inventory", "shipping", "notifications"]

# What a worker runs as: (node name, the queues it consumes, its pool's size).
WorkerSpec = tuple[str, list[str], int]


class WorkerProcess(LoggedProcess):
    """``celery -A config worker -Q …`` as an operator starts one, in a process group of its own."""

    def __init__(
        self,
        name: str,
        queues: list[str],
        env: dict[str, str],
        concurrency: int,
        pool: str = "prefork",
    ):
        self.env = env
        super().__init__(name, [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "-n", f"{name}@%h", "-Q", ",".join(queues), "-c", str(concurrency), "-P", pool,
            "-l", "INFO", "--without-gossip", "--without-mingle",
        ], env)  # fmt: skip

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def pool_children(self) -> list[int]:
        found = subprocess.run(
            [shutil.which("pgrep") or "pgrep", "-P", str(self.process.pid)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return [int(pid) for pid in found.stdout.split()]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(" ready." in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20) -> int | None:
        # A warm shutdown first; then the whole group goes: no pool child outlives it.
        return super().stop(timeout)


def worker_env(rabbitmq: str, django_db_blocker) -> dict[str, str]:
    """The environment of a worker on this broker and on the test database."""
    with django_db_blocker.unblock():
        if not is_test_database():
            # pytest-django creates the test database only when a collected
            # test asks for one; never let workers loose on the real one.
            pytest.fail("tests that use workers must be marked django_db(transaction=True)")
        default_url = database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": default_url,
        "CELERY_BROKER_URL": rabbitmq,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GATEWAY_DATABASE_URL", None)
    if default_url.startswith("sqlite"):
        env["GATEWAY_DATABASE_URL"] = database_url("gateway")
    return env


def workers_start(specs: dict[str, WorkerSpec], env: dict[str, str]) -> dict[str, WorkerProcess]:
    """Start a worker per spec and return once all are ready; if one is not, none is left."""
    started = {
        key: WorkerProcess(name, queues, env, concurrency)
        for key, (name, queues, concurrency) in specs.items()
    }
    try:
        for worker in started.values():
            worker.wait_ready()
    except Exception:
        workers_stop(started)
        raise
    return started


def workers_stop(workers: dict[str, WorkerProcess]) -> None:
    """Every worker told at once, then each waited for: their warm shutdowns overlap."""
    for worker in workers.values():
        worker.terminate()
    for worker in workers.values():
        worker.finish(timeout=20)


@contextlib.contextmanager
def workers_running(
    specs: dict[str, WorkerSpec], env: dict[str, str]
) -> Iterator[dict[str, WorkerProcess]]:
    started = workers_start(specs, env)
    try:
        yield started
    finally:
        workers_stop(started)


@contextlib.contextmanager
def consumer_paused(worker: WorkerProcess, queue: str) -> Iterator[None]:
    """Hold a worker off its queue (its messages wait there), and let it go on after the block.

    Each command goes on a connection of its own: the app's pooled one may be
    one an earlier test's broker restart closed.
    """
    with app.connection_for_write() as connection:
        app.control.cancel_consumer(
            queue, destination=[worker.hostname], reply=True, connection=connection
        )
    try:
        yield
    finally:
        with app.connection_for_write() as connection:
            app.control.add_consumer(
                queue, destination=[worker.hostname], reply=True, connection=connection
            )

"""Shared fixtures: real Celery workers on RabbitMQ against the test database.

Delivery tests use ``workers``: two worker processes started with the
project's own ``celery -A config worker`` command, one consuming probe_a and
every app queue, the other probe_b alone. The test process itself publishes
through ``broker_proxy``, a TCP proxy in front of RabbitMQ that a test can cut
to make the broker unreachable for real.

Outside CI a test that needs RabbitMQ skips when it is not running; with
CI=true it fails instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.support.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
BROKER_URL = os.environ["CELERY_BROKER_URL"]  # set by config.settings.test
# The database settings name before pytest-django swaps in the test database.
CONFIGURED_DATABASE = settings.DATABASES["default"]["NAME"]


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False


def require(condition: bool, what: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available")


def wait_for(predicate: Callable[[], object], *, timeout: float = 30, what: str = "condition"):
    """Poll until predicate() is truthy and return its value; fail after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    require(BROKER_URL.startswith("amqp") and _reachable(BROKER_URL), "RabbitMQ")
    return BROKER_URL


@pytest.fixture(scope="session")
def broker_proxy(rabbitmq: str) -> Iterator[TcpProxy]:
    """Route this process's publishing through a proxy a test can cut."""
    from config.celery import app

    parts = urlsplit(rabbitmq)
    proxy = TcpProxy((parts.hostname, parts.port or 5672))
    proxy.start()
    # Celery reads CELERY_BROKER_URL from the environment before its settings.
    proxied = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    os.environ["CELERY_BROKER_URL"] = app.conf.broker_url = proxied.geturl()
    yield proxy
    proxy.stop()


class WorkerProcess:
    def __init__(self, name: str, queues: list[str], env: dict[str, str], concurrency: int):
        self.name = name
        self.env = env
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "-n", f"{name}@%h", "-Q", ",".join(queues), "-c", str(concurrency),
                "-l", "INFO", "--without-gossip", "--without-mingle",
            ],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def pool_children(self) -> list[int]:
        found = subprocess.run(
            [shutil.which("pgrep") or "pgrep", "-P", str(self.process.pid)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return [int(pid) for pid in found.stdout.split()]

    def log(self) -> str:
        return "\n".join(self.lines[-200:])

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(" ready." in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # The worker leads its own process group: no pool child outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def purge_queues(names: list[str]) -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in app.amqp.queues.values():
            if queue.name in names:
                queue(channel).declare()
                queue(channel).purge()


@pytest.fixture(scope="session", autouse=True)
def _close_connections_before_teardown(django_db_setup, django_db_blocker):
    """Close every alias's connection (the gateway's too) before the test database is dropped."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()


def _worker_env(rabbitmq: str, django_db_blocker) -> dict[str, str]:
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.settings_dict["NAME"] == CONFIGURED_DATABASE:
            # pytest-django creates the test database only when a collected
            # test asks for one; never let workers loose on the real one.
            pytest.fail("tests that use workers must be marked django_db(transaction=True)")
        database_url = _database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": rabbitmq,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GATEWAY_DATABASE_URL", None)
    if database_url.startswith("sqlite"):
        from django.db import connections

        env["GATEWAY_DATABASE_URL"] = f"sqlite:///{connections['gateway'].settings_dict['NAME']}"
    return env


def _start(specs: dict[str, tuple[str, list[str], int]], env) -> dict[str, WorkerProcess]:
    started = {
        key: WorkerProcess(name, queues, env, concurrency)
        for key, (name, queues, concurrency) in specs.items()
    }
    try:
        for worker in started.values():
            worker.wait_ready()
    except Exception:
        for worker in started.values():
            worker.stop()
        raise
    return started


@pytest.fixture(scope="session")
def workers(
    rabbitmq, broker_proxy, django_db_setup, django_db_blocker
) -> Iterator[dict[str, WorkerProcess]]:
    """Two real worker processes for the probe app's queues, on the test database."""
    env = _worker_env(rabbitmq, django_db_blocker)
    purge_queues([*settings.PROBE_QUEUES, "messaging"])
    started = _start(
        {
            "a": ("probe-a", ["probe_a", "messaging"], 2),
            "b": ("probe-b", ["probe_b"], 1),
        },
        env,
    )
    yield started
    for worker in started.values():
        worker.stop()


APP_QUEUES = ["orders", "payments", "inventory", "shipping", "notifications"]


def queue_depths(names: list[str]) -> dict[str, int]:
    """Messages ready or in flight (unacknowledged, including delayed retries) per queue."""
    listed = subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", "list_queues", "name", "messages",
         "--formatter", "json", "--quiet"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {q["name"]: q["messages"] for q in json.loads(listed.stdout) if q["name"] in names}


def wait_until_quiet(names: list[str], timeout: float = 60) -> None:
    """Wait until the workers have nothing left to do on these queues.

    A test's database is flushed when it ends; a worker still writing then
    would deadlock with the flush or leak rows into the next test.
    """
    deadline = time.monotonic() + timeout
    quiet_checks = 0
    while quiet_checks < 2:
        depths = queue_depths(names)
        quiet_checks = quiet_checks + 1 if not any(depths.values()) else 0
        if time.monotonic() > deadline:
            pytest.fail(f"the workers did not finish their work: {depths}")
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def _dispatch_not_paused():
    """A broker failure in one test must not leave the next one's messages to the relay."""
    from messaging.publishing import dispatch_pause_reset

    dispatch_pause_reset()


# The queues each worker fixture consumes, to let them go quiet after a test.
WORKER_FIXTURE_QUEUES = {
    "workers": lambda: [*settings.PROBE_QUEUES, "messaging"],
    "app_workers": lambda: APP_QUEUES,
    "fan_out_worker": lambda: ["probe_c", "probe_d"],
}


@pytest.fixture(autouse=True)
def _workers_settle(request):
    """After a test that used workers, let them finish before the database is flushed."""
    used = [f for f in WORKER_FIXTURE_QUEUES if f in request.fixturenames]
    if used:
        # Set up the database first, so that this teardown runs before its flush.
        request.getfixturevalue("transactional_db")
    yield
    if used and shutil.which("rabbitmqctl"):
        wait_until_quiet(sorted({q for f in used for q in WORKER_FIXTURE_QUEUES[f]()}))


@pytest.fixture(scope="session")
def app_workers(
    rabbitmq, broker_proxy, django_db_setup, django_db_blocker
) -> Iterator[dict[str, WorkerProcess]]:
    """Each app's consumer as its own worker process: celery -A config worker -Q <app>."""
    env = _worker_env(rabbitmq, django_db_blocker)
    purge_queues(APP_QUEUES)
    started = _start({queue: (f"{queue}-worker", [queue], 1) for queue in APP_QUEUES}, env)
    yield started
    for worker in started.values():
        worker.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed:
        for fixture in WORKER_FIXTURE_QUEUES:
            for worker in (funcargs.get(fixture) or {}).values():
                report.sections.append((f"worker {worker.name} log", worker.log()))
    return report

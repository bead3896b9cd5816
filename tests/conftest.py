"""Shared fixtures: real Celery workers on RabbitMQ against the test database.

Delivery tests use ``workers``: two worker processes started with the
project's own ``celery -A config worker`` command, one consuming probe_a and
every app queue, the other probe_b alone. The test process itself publishes
through ``broker_proxy``, a TCP proxy in front of RabbitMQ that a test can cut
to make the broker unreachable for real. The machinery is in tests/support.

Outside CI a test that needs RabbitMQ (or Redis, or the redis-server
program) skips when it is not there; with CI=true it fails instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.support.broker import broker_reachable, publishing_through_proxy, purge_queues
from tests.support.live import LiveStack
from tests.support.prerequisites import require
from tests.support.redis import redis_reachable
from tests.support.stream_processor import StreamProcessors
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until_quiet
from tests.support.workers import APP_QUEUES, WorkerProcess, worker_env, workers_running

# Assertions there are the suite's own: show their operands when they fail.
pytest.register_assert_rewrite("tests.flow.invariants")

# The session's worker fixtures started so far: they consume whatever any test
# publishes to their queues.
_STARTED: set[str] = set()


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    url = settings.CELERY_BROKER_URL
    require(url.startswith("amqp") and broker_reachable(url), "RabbitMQ")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis of the event log's redis backend (EVENT_LOG_REDIS_URL of the test settings)."""
    url = settings.EVENT_LOG_REDIS_URL
    require(bool(url) and redis_reachable(url), "Redis")
    return url


@pytest.fixture(scope="session")
def redis_server_program() -> str:
    """redis-server, for tests that start (and kill) a Redis of their own."""
    program = shutil.which("redis-server")
    require(program is not None, "the redis-server program")
    return program


@pytest.fixture
def browser(tmp_path) -> Iterator:
    """A real headless Chromium (Debian's chromium and chromium-driver), closed after the test."""
    from tests.support.browser import chromium

    driver = chromium(tmp_path / "profile")
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def broker_proxy(rabbitmq: str) -> Iterator[TcpProxy]:
    """Route this process's publishing through a proxy a test can cut."""
    with publishing_through_proxy(rabbitmq) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, closing every alias's connection (the gateway's too) before it drops
    the test database."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()


@pytest.fixture(scope="session")
def workers(
    rabbitmq, broker_proxy, django_db_setup, django_db_blocker
) -> Iterator[dict[str, WorkerProcess]]:
    """Two real worker processes for the probe app's queues, on the test database."""
    env = worker_env(rabbitmq, django_db_blocker)
    purge_queues([*settings.PROBE_QUEUES, "messaging"])
    specs = {"a": ("probe-a", ["probe_a", "messaging"], 2), "b": ("probe-b", ["probe_b"], 1)}
    with workers_running(specs, env) as started:
        yield started


@pytest.fixture(scope="session")
def app_workers(
    rabbitmq, broker_proxy, django_db_setup, django_db_blocker
) -> Iterator[dict[str, WorkerProcess]]:
    """Each app's consumer as its own worker process: celery -A config worker -Q <app>."""
    env = worker_env(rabbitmq, django_db_blocker)
    purge_queues(APP_QUEUES)
    specs = {queue: (f"{queue}-worker", [queue], 1) for queue in APP_QUEUES}
    with workers_running(specs, env) as started:
        _STARTED.add("app_workers")
        yield started
        _STARTED.discard("app_workers")


@pytest.fixture(scope="module")
def live_stack(app_workers, redis_url, django_db_blocker) -> Iterator[LiveStack]:
    """The streaming server and the publisher, pushing the app workers' orders on Redis."""
    stack = LiveStack(worker_env(settings.CELERY_BROKER_URL, django_db_blocker), redis_url)
    try:
        yield stack.start()
    finally:
        stack.stop()


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


def _transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and marker.kwargs.get("transaction")) or any(
        f in request.fixturenames for f in ("transactional_db", "live_server")
    )


def _published_anything() -> bool:
    from messaging.models import OutboxMessage

    return OutboxMessage.objects.filter(dispatched_at__isnull=False).exists()


@pytest.fixture(autouse=True)
def _workers_settle(request):
    """After a test that used workers, let them finish before the database is flushed.

    A test that commits and publishes (a live server's order, a form posted from
    threads) reaches the app queues too: the session's app workers, if a test
    before started them, handle it while this test ends.
    """
    used = [f for f in WORKER_FIXTURE_QUEUES if f in request.fixturenames]
    watch = bool(_STARTED) and not used and _transactional(request)
    if used or watch:
        # Set up the database first, so that this teardown runs before its flush.
        request.getfixturevalue("transactional_db")
    yield
    if watch and _published_anything():
        used = sorted(_STARTED)
    if used and shutil.which("rabbitmqctl"):
        wait_until_quiet(sorted({q for f in used for q in WORKER_FIXTURE_QUEUES[f]()}))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed:
        for fixture in WORKER_FIXTURE_QUEUES:
            for worker in (funcargs.get(fixture) or {}).values():
                report.sections.append((f"worker {worker.name} log", worker.log()))
        for value in funcargs.values():
            if isinstance(value, StreamProcessors):
                report.sections.append(("stream processor log", value.log()))
            if isinstance(value, LiveStack):
                report.sections.append(("live stack log", value.log()))
    return report

"""GET /healthz and GET /readyz against the real PostgreSQL, RabbitMQ and Redis.

The checks run in threads of their own, with connections of their own: what
they read must be committed, hence transactional tests.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from config.celery import app
from messaging.models import DeadLetter, OutboxMessage, RelayRun

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = ["database", "broker", "redis", "outbox", "relay", "dead_letters"]


@pytest.fixture
def relay_ran() -> RelayRun:
    """The relay's record as a running worker leaves it: a moment ago."""
    return RelayRun.objects.create(
        name=RelayRun.OUTBOX, ran_at=timezone.now(), runner="payments-worker@host"
    )


@pytest.fixture
def celery_conf() -> Iterator:
    """Change this process's Celery settings for one test (the checks read Celery's)."""
    saved = {}

    def change(**values) -> None:
        for key, value in values.items():
            saved.setdefault(key, app.conf[key])
            app.conf[key] = value

    yield change
    for key, value in saved.items():
        app.conf[key] = value


@pytest.fixture
def broker_at(celery_conf, monkeypatch):
    """Point this process's broker URL elsewhere for one test."""

    def point(url: str) -> None:
        # Celery reads CELERY_BROKER_URL from the environment before its settings.
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        celery_conf(broker_url=url)

    return point


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ready(client) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = client.get("/readyz")
    return response.status_code, response.json(), time.monotonic() - started


def pending_message(*, age_seconds: float) -> OutboxMessage:
    message_id = uuid.uuid4()
    return OutboxMessage.objects.create(
        message_id=message_id,
        kind="event",
        type="ProbePinged",
        version=1,
        occurred_at=timezone.now() - timedelta(seconds=age_seconds),
        correlation_id=str(message_id),
        payload={"probe_id": "health"},
        dispatch_attempts=3,
        last_dispatch_error="OperationalError: [Errno 111] Connection refused",
    )


def dead_letters(count: int, *, handler: str = "payments.charge_for_order") -> None:
    now = timezone.now()
    DeadLetter.objects.bulk_create(
        DeadLetter(
            handler=handler,
            queue="payments",
            reason=DeadLetter.Reason.RETRIES_EXHAUSTED,
            error="GatewayError: boom",
            first_failed_at=now,
            last_failed_at=now,
        )
        for _ in range(count)
    )


# --- /healthz -------------------------------------------------------------------


def test_healthz_answers_at_once_and_touches_no_database_or_broker(
    client, broker_at, django_assert_num_queries
):
    # Given a broker nobody could reach
    broker_at(f"amqp://guest:guest@127.0.0.1:{closed_port()}//")

    # When the liveness probe asks, then it answers 200 without a single query
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


# --- /readyz: all well ------------------------------------------------------------


def test_readyz_answers_200_with_every_check_when_all_is_well(client, rabbitmq, relay_ran):
    status, body, took = ready(client)

    assert status == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert list(body["checks"]) == CHECKS
    assert all(entry["ok"] for entry in body["checks"].values())
    assert body["checks"]["broker"]["detail"].startswith("RabbitMQ ")
    assert body["checks"]["redis"]["detail"].startswith("not configured")
    assert body["checks"]["relay"]["detail"].startswith("ran ")
    assert "payments-worker@host" in body["checks"]["relay"]["detail"]
    assert took < 2


def test_readyz_checks_redis_when_it_is_configured(client, rabbitmq, relay_ran, settings):
    settings.REDIS_URL = settings.EVENT_LOG_REDIS_URL  # the tests' Redis
    from tests.support.redis import redis_reachable

    if not redis_reachable(settings.REDIS_URL):
        pytest.skip("Redis is not available")

    status, body, _ = ready(client)

    assert status == 200, body
    assert body["checks"]["redis"]["detail"].endswith("answered PING")


# --- /readyz: each failing check names itself -------------------------------------


def test_a_broker_on_a_closed_port_fails_the_broker_check(client, relay_ran, broker_at):
    broker_at(f"amqp://guest:secret@127.0.0.1:{closed_port()}//")

    status, body, _ = ready(client)

    assert status == 503
    assert body["status"] == "failing"
    assert body["failing"] == ["broker"]
    error = body["checks"]["broker"]["error"]
    assert "cannot connect to the broker" in error
    assert "Connection refused" in error
    assert "secret" not in error  # the password is masked


def test_a_broker_list_passes_when_a_later_node_answers(client, rabbitmq, relay_ran, broker_at):
    broker_at(f"amqp://guest:secret@127.0.0.1:{closed_port()}//;{rabbitmq}")

    status, body, _ = ready(client)

    assert status == 200, body
    assert body["checks"]["broker"]["ok"]


def test_a_broker_list_with_no_node_up_fails_and_masks_every_password(client, relay_ran, broker_at):
    first, second = closed_port(), closed_port()
    broker_at(f"amqp://guest:first@127.0.0.1:{first}//;amqp://guest:second@127.0.0.1:{second}//")

    status, body, _ = ready(client)

    assert status == 503
    error = body["checks"]["broker"]["error"]
    assert f"127.0.0.1:{first}" in error and f"127.0.0.1:{second}" in error
    assert "first" not in error.replace(f"127.0.0.1:{first}", "")
    assert "second" not in error


def test_a_broker_that_accepts_and_never_answers_fails_within_its_connection_timeout(
    client, relay_ran, broker_at
):
    # Given a port that accepts the connection and then says nothing
    with silent_server() as port:
        broker_at(f"amqp://guest:guest@127.0.0.1:{port}//")

        status, body, took = ready(client)

    # Then the broker check gives up after CELERY_BROKER_CONNECTION_TIMEOUT, not later
    assert status == 503
    assert body["failing"] == ["broker"]
    assert "timed out" in body["checks"]["broker"]["error"]
    assert took < app.conf.broker_connection_timeout + 2


def test_a_check_still_blocked_after_its_budget_does_not_hold_the_answer(
    client, relay_ran, broker_at, celery_conf, settings
):
    # Given a silent broker, and a connection timeout longer than the check's budget
    settings.READY_CHECK_TIMEOUT = 0.5
    celery_conf(broker_connection_timeout=20)
    with silent_server() as port:
        broker_at(f"amqp://guest:guest@127.0.0.1:{port}//")

        status, body, took = ready(client)

    # Then /readyz answers once the budget (and the library's second of grace) is spent
    assert status == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["error"] == "Unavailable: Timed out after 0.5 seconds"
    assert took < 3


def test_redis_that_does_not_answer_fails_the_redis_check(client, rabbitmq, relay_ran, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    status, body, _ = ready(client)

    assert status == 503
    assert body["failing"] == ["redis"]
    assert "does not answer" in body["checks"]["redis"]["error"]


def test_an_old_undispatched_message_fails_the_outbox_check(client, rabbitmq, relay_ran, settings):
    # Given a message committed 90 s ago that nothing dispatched
    settings.READY_OUTBOX_MAX_AGE = 60
    old = pending_message(age_seconds=90)

    status, body, _ = ready(client)

    assert status == 503
    assert body["failing"] == ["outbox"]
    error = body["checks"]["outbox"]["error"]
    assert str(old.message_id) in error
    assert "more than READY_OUTBOX_MAX_AGE (60 s)" in error
    assert "1 pending" in error
    assert "Connection refused" in error  # its last dispatch error


def test_a_young_pending_message_is_fine(client, rabbitmq, relay_ran, settings):
    settings.READY_OUTBOX_MAX_AGE = 60
    pending_message(age_seconds=5)

    status, body, _ = ready(client)

    assert status == 200, body
    assert body["checks"]["outbox"]["detail"].startswith("1 pending, the oldest for 5.")


def test_no_relay_ever_run_fails_the_relay_check(client, rabbitmq):
    status, body, _ = ready(client)

    assert status == 503
    assert body["failing"] == ["relay"]
    assert "no relay has ever run" in body["checks"]["relay"]["error"]


def test_a_stale_relay_record_fails_the_relay_check(client, rabbitmq, settings):
    settings.READY_RELAY_MAX_AGE = 13
    RelayRun.objects.create(
        name=RelayRun.OUTBOX,
        ran_at=timezone.now() - timedelta(seconds=40),
        runner="payments-worker@host",
    )

    status, body, _ = ready(client)

    assert status == 503
    assert body["failing"] == ["relay"]
    error = body["checks"]["relay"]["error"]
    assert "last ran 40." in error
    assert "payments-worker@host" in error
    assert "READY_RELAY_MAX_AGE (13 s)" in error


def test_a_burst_of_dead_letters_fails_the_dead_letter_check(client, rabbitmq, relay_ran, settings):
    settings.READY_DEAD_LETTER_MAX = 10
    settings.READY_DEAD_LETTER_WINDOW = 300
    dead_letters(11)
    dead_letters(1, handler="shipping.create_shipment")

    status, body, _ = ready(client)

    assert status == 503
    assert body["failing"] == ["dead_letters"]
    error = body["checks"]["dead_letters"]["error"]
    assert error.startswith("Unavailable: 12 dead letters recorded in the last 300 s")
    assert "11 payments.charge_for_order (retries_exhausted)" in error


def test_dead_letters_within_the_limit_or_older_than_the_window_are_fine(
    client, rabbitmq, relay_ran, settings
):
    settings.READY_DEAD_LETTER_MAX = 10
    settings.READY_DEAD_LETTER_WINDOW = 300
    dead_letters(10)
    DeadLetter.objects.update(last_failed_at=timezone.now() - timedelta(seconds=600))
    dead_letters(3)

    status, body, _ = ready(client)

    assert status == 200, body
    assert body["checks"]["dead_letters"]["detail"] == (
        "3 recorded in the last 300 s (the limit is 10)"
    )


def test_a_database_nobody_can_reach_fails_every_check_that_reads_it(client, rabbitmq):
    # Given a database on a closed port for every new connection (the checks open their own)
    database = connections["default"].settings_dict
    port, host = database["PORT"], database["HOST"]
    if connections["default"].vendor != "postgresql":
        pytest.skip("a database server to be unreachable")
    database["HOST"], database["PORT"] = "127.0.0.1", closed_port()
    try:
        status, body, took = ready(client)
    finally:
        database["HOST"], database["PORT"] = host, port

    assert status == 503
    assert body["failing"] == ["database", "outbox", "relay", "dead_letters"]
    assert body["checks"]["outbox"]["error"].startswith("Unavailable: cannot read the outbox")
    assert took < 3

"""Retries counted per queue in the real Redis, from the backbone's delivery_retried signal."""

from __future__ import annotations

import logging
import time

import pytest
import redis
from django.utils import timezone

from live import retries
from live.channels import prefix
from live.figures import queues
from tests.live.stub_broker import StubProbe
from tests.support.redis import free_port
from tests.support.retries import deliver_once, failing_handler

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_failure_state(monkeypatch):
    """Each test starts with Redis not paused and no failure logged yet."""
    monkeypatch.setattr(retries, "_paused_until", 0.0)
    monkeypatch.setattr(retries, "_logged_at", float("-inf"))


@pytest.fixture
def counters(settings, redis_url):
    """Retries counted in the real Redis, starting from none (this test database's keys)."""
    settings.REDIS_URL = redis_url
    client = redis.Redis.from_url(redis_url)

    def forget() -> None:
        for key in client.scan_iter(match=f"{prefix()}retries:*"):
            client.delete(key)

    forget()
    yield
    forget()


def test_a_published_retry_is_counted_for_its_queue(rabbitmq, counters):
    # Given a site with Redis, and a handler that fails
    with failing_handler() as failing:
        assert retries.retries_recent([failing.queue]) == {failing.queue: 0}

        # When two of its deliveries fail and are retried
        outcomes = [deliver_once(failing)[0] for _ in range(2)]

        # Then both retries are counted for its queue (by the live app's receiver), none elsewhere
        assert outcomes == ["retried", "retried"]
        assert retries.retries_recent([failing.queue, "shipping_elsewhere"]) == {
            failing.queue: 2,
            "shipping_elsewhere": 0,
        }


def test_the_dashboard_reads_the_counts_of_the_last_five_minutes(settings, counters):
    # Given retries counted for payments now, four minutes ago and six minutes ago
    settings.MESSAGING_QUEUES = ["payments", "shipping"]
    now = time.time()
    for ago in (0, 0, 4 * 60, 6 * 60):
        retries.retry_count(queue="payments", at=now - ago)

    # When the queues are read
    found = queues.queues(now=timezone.now(), probe=StubProbe())

    # Then the last five minutes' are in payments' row
    rows = {row["queue"]: row["retries_5m"] for row in found["rows"]}
    assert rows == {"payments": 3, "shipping": 0}
    assert found["retries"]["is_counted"] is True


def test_without_redis_nothing_is_counted_and_the_read_says_why(settings):
    settings.REDIS_URL = ""

    retries.retry_count(queue="payments")

    with pytest.raises(retries.RetriesUnavailable, match="not counted without Redis"):
        retries.retries_recent(["payments"])


def test_a_redis_that_does_not_answer_neither_slows_nor_fails_a_retry(settings, caplog):
    # Given a Redis URL nothing listens on
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    caplog.set_level(logging.WARNING, logger="live.retries")

    # When retries are counted, many times
    started = time.monotonic()
    for _ in range(50):
        retries.retry_count(queue="payments")

    # Then counting gave up at once, logged the failure once, and the read says why
    assert time.monotonic() - started < 0.5
    assert len([r for r in caplog.records if "Retry counter" in r.getMessage()]) == 1
    with pytest.raises(retries.RetriesUnavailable):
        retries.retries_recent(["payments"])

"""The readiness checks of GET /readyz, on django-health-check's HealthCheck.

Each check raises ``ServiceUnavailable`` saying in words what is wrong, and
on success leaves what it found in ``detail``. The library runs each in a
thread of its own with a budget of READY_CHECK_TIMEOUT seconds
(``HealthCheck.get_result``); a check that reads the database opens its own
connection there and closes it when done.

The thresholds are stateless, so that every web process answers alike: the
outbox's oldest pending message, the relay's last recorded run and the dead
letters recorded within a window are all read from the database as they are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import redis
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from health_check import Database
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from messaging.broker_urls import connect_once_to_each, sanitized
from messaging.selectors import (
    dead_letters_recorded_since,
    outbox_oldest_pending,
    outbox_pending_count,
    relay_last_run,
)

# Pending messages are counted up to this many (a bounded read, however large the backlog).
PENDING_COUNTED_UP_TO = 10_000


@dataclasses.dataclass
class ReadinessCheck(HealthCheck):
    """A check under its name in /readyz, with what it found when it passes."""

    name: ClassVar[str] = ""
    detail: str = dataclasses.field(default="", init=False, repr=False)

    @property
    def timeout(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=settings.READY_CHECK_TIMEOUT)


@contextlib.contextmanager
def database_read(what: str) -> Iterator[None]:
    """This thread's own connection for the check's reads, closed after; an error in words."""
    try:
        with connection.temporary_connection():
            yield
    except DatabaseError as exc:
        raise ServiceUnavailable(f"cannot read {what}: {exc}".strip()) from exc


def seconds(value: float) -> str:
    return f"{value:.1f} s"


@dataclasses.dataclass
class DatabaseCheck(ReadinessCheck):
    """The default database answers a query (django-health-check's own check)."""

    name: ClassVar[str] = "database"

    def run(self) -> None:
        started = time.monotonic()
        Database(alias="default").run()
        vendor = connection.vendor
        self.detail = f"{vendor} answered in {(time.monotonic() - started) * 1000:.0f} ms"


@dataclasses.dataclass
class BrokerCheck(ReadinessCheck):
    """The broker takes a connection: the project's URL, connection timeout and socket timeouts.

    A broker that accepts the connection and never answers fails within
    CELERY_BROKER_CONNECTION_TIMEOUT (py-amqp bounds the handshake by it too);
    the file-system broker counts as reachable when its folder exists.
    """

    name: ClassVar[str] = "broker"

    def run(self) -> None:
        conf = current_app.conf
        url = conf.broker_url
        options = conf.broker_transport_options or {}
        if url.startswith("filesystem://"):
            folder = Path(options.get("data_folder_in", settings.BROKER_DIR))
            if not folder.is_dir():
                raise ServiceUnavailable(
                    f"the file-system broker's folder {folder} does not exist "
                    "(no worker or producer has used it yet)"
                )
            self.detail = f"file-system broker, messages in {folder}"
            return
        where = sanitized(url)
        started = time.monotonic()
        broker = Connection(
            url,
            connect_timeout=conf.broker_connection_timeout,
            transport_options=options,
            heartbeat=0,
        )
        try:
            # One attempt per node, no pause: a probe reports, it does not wait the outage out.
            connect_once_to_each(broker)
            version = (broker.connection.server_properties or {}).get("version", b"")
        except Exception as exc:
            raise ServiceUnavailable(
                f"cannot connect to the broker at {where}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            broker.release()
        if isinstance(version, bytes):
            version = version.decode(errors="replace")
        product = f"RabbitMQ {version}" if version else "the broker"
        self.detail = (
            f"{product} at {where} answered in {(time.monotonic() - started) * 1000:.0f} ms"
        )


def redis_urls() -> list[str]:
    """The Redis servers the site uses: REDIS_URL, and the event log's when it lives on Redis."""
    urls = [settings.REDIS_URL]
    if settings.EVENT_LOG_BACKEND == "redis":
        urls.append(settings.EVENT_LOG_REDIS_URL)
    return list(dict.fromkeys(url for url in urls if url))


@dataclasses.dataclass
class RedisCheck(ReadinessCheck):
    """Each Redis the site uses answers PING; with none configured, nothing to check."""

    name: ClassVar[str] = "redis"

    def run(self) -> None:
        urls = redis_urls()
        if not urls:
            self.detail = "not configured (REDIS_URL is unset): pages poll, nothing to check"
            return
        limit = settings.READY_CHECK_TIMEOUT
        answered = []
        for url in urls:
            client = redis.Redis.from_url(url, socket_connect_timeout=limit, socket_timeout=limit)
            try:
                client.ping()
            except (redis.RedisError, OSError) as exc:
                raise ServiceUnavailable(
                    f"Redis at {maybe_sanitize_url(url)} does not answer: {exc}"
                ) from exc
            finally:
                client.close()
            answered.append(maybe_sanitize_url(url))
        self.detail = f"{', '.join(answered)} answered PING"


@dataclasses.dataclass
class OutboxCheck(ReadinessCheck):
    """No committed message has waited for its dispatch longer than READY_OUTBOX_MAX_AGE."""

    name: ClassVar[str] = "outbox"

    def run(self) -> None:
        limit = settings.READY_OUTBOX_MAX_AGE
        with database_read("the outbox"):
            oldest = outbox_oldest_pending()
            if oldest is None:
                self.detail = "nothing waits to be dispatched"
                return
            pending = outbox_pending_count(up_to=PENDING_COUNTED_UP_TO)
        age = (timezone.now() - oldest.occurred_at).total_seconds()
        counted = f"{pending}{'+' if pending >= PENDING_COUNTED_UP_TO else ''} pending"
        if age <= limit:
            self.detail = f"{counted}, the oldest for {seconds(age)} (the limit is {limit:g} s)"
            return
        error = oldest.last_dispatch_error or "none recorded"
        raise ServiceUnavailable(
            f"the oldest message waiting to be dispatched ({oldest.type} {oldest.message_id}) "
            f"has waited {seconds(age)}, more than READY_OUTBOX_MAX_AGE ({limit:g} s); "
            f"{counted}; {oldest.dispatch_attempts} attempts, last error: {error}"
        )


@dataclasses.dataclass
class RelayCheck(ReadinessCheck):
    """The outbox relay ran within READY_RELAY_MAX_AGE (its own record of its last run)."""

    name: ClassVar[str] = "relay"

    def run(self) -> None:
        limit = settings.READY_RELAY_MAX_AGE
        with database_read("the relay's last run"):
            run = relay_last_run()
        if run is None:
            raise ServiceUnavailable(
                "no relay has ever run on this database: every worker runs it "
                "(MESSAGING_WORKER_RELAY), or run manage.py relay_outbox --loop"
            )
        age = (timezone.now() - run.ran_at).total_seconds()
        if age > limit:
            raise ServiceUnavailable(
                f"the relay last ran {seconds(age)} ago (by {run.runner}), more than "
                f"READY_RELAY_MAX_AGE ({limit:g} s): no worker is relaying the outbox"
            )
        self.detail = (
            f"ran {seconds(age)} ago by {run.runner}: "
            f"{run.dispatched} dispatched, {run.failed} failed"
        )


@dataclasses.dataclass
class DeadLettersCheck(ReadinessCheck):
    """At most READY_DEAD_LETTER_MAX dead letters recorded in the last READY_DEAD_LETTER_WINDOW.

    A count within a window that every process reads alike, rather than growth
    since the previous check, which each web process would see differently.
    """

    name: ClassVar[str] = "dead_letters"

    def run(self) -> None:
        window, limit = settings.READY_DEAD_LETTER_WINDOW, settings.READY_DEAD_LETTER_MAX
        since = timezone.now() - datetime.timedelta(seconds=window)
        with database_read("the dead letters"):
            groups = dead_letters_recorded_since(since)
        recorded = sum(group["count"] for group in groups)
        if recorded <= limit:
            self.detail = f"{recorded} recorded in the last {window:g} s (the limit is {limit})"
            return
        shown = ", ".join(
            f"{group['count']} {group['handler'] or 'before any handler'} ({group['reason']})"
            for group in groups[:5]
        )
        raise ServiceUnavailable(
            f"{recorded} dead letters recorded in the last {window:g} s, more than "
            f"READY_DEAD_LETTER_MAX ({limit}): {shown}{', …' if len(groups) > 5 else ''} "
            "(admin: Dead letters)"
        )


READINESS_CHECKS = (
    DatabaseCheck,
    BrokerCheck,
    RedisCheck,
    OutboxCheck,
    RelayCheck,
    DeadLettersCheck,
)

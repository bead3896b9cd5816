"""Settings for the test suite: PostgreSQL and RabbitMQ on 127.0.0.1 by default.

Outside CI, a missing PostgreSQL falls back to SQLite and the delivery tests
skip when RabbitMQ is absent; with CI=true nothing falls back (tests/conftest.py
fails instead of skipping).
"""

import os
import socket

from kombu import Exchange, Queue


def _is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if "DATABASE_URL" not in os.environ and (os.environ.get("CI") or _is_listening("127.0.0.1", 5432)):
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/test"
os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
# The gateway's circuit breaker shared through Redis, quick to try again.
if os.environ.get("CI") or _is_listening("127.0.0.1", 6379):
    os.environ.setdefault("PAYMENT_GATEWAY_BREAKER_REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("PAYMENT_GATEWAY_BREAKER_RESET", "1")
# Fast retries so the tests see the whole backoff-then-dead-letter cycle.
os.environ.setdefault("MESSAGING_MAX_RETRIES", "3")
os.environ.setdefault("MESSAGING_RETRY_BACKOFF", "0.2")
os.environ.setdefault("MESSAGING_RETRY_BACKOFF_MAX", "1")
# A quick relay, so the test of the beat-driven relay waits seconds, not minutes.
os.environ.setdefault("MESSAGING_RELAY_INTERVAL", "1")
os.environ.setdefault("MESSAGING_RELAY_GRACE", "1")
# A gateway that answers at once; its timeout card still times out twice.
os.environ.setdefault("PAYMENT_GATEWAY_LATENCY", "0")

from .base import *  # noqa: E402, F403
from .base import CELERY_TASK_QUEUES, INSTALLED_APPS, MESSAGING_QUEUES  # noqa: E402

# A probe app whose events and handlers exercise the backbone without any
# business domain; its queues exist only in tests.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.probe"]
# probe_c and probe_d are consumed only by tests/messaging/test_fan_out.py's worker.
PROBE_QUEUES = ["probe_a", "probe_b", "probe_c", "probe_d"]
MESSAGING_QUEUES = [*MESSAGING_QUEUES, *PROBE_QUEUES]
CELERY_TASK_QUEUES = [
    *CELERY_TASK_QUEUES,
    *[
        Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)
        for name in PROBE_QUEUES
    ],
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that worker processes see the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# The tests publish the probe app's messages (messaging.checks reads who publishes what).
MESSAGING_PUBLISHER_MODULES = [
    "tests.support.probes",
    "tests.messaging.test_delivery",
    "tests.messaging.test_dead_letters",
    "tests.messaging.test_fan_out",
]

"""Settings for the test suite: PostgreSQL, RabbitMQ and Redis on 127.0.0.1, and quick timings.

Each value below is a default, which the environment overrides as it does
base's: the workers the tests start load this module too, so they run with
the same values. The suite needs PostgreSQL; DATABASE_URL=sqlite:///...
runs it on SQLite instead.
"""

from .base import *  # noqa: F403
from .base import (
    CELERY_TASK_QUEUES,
    INSTALLED_APPS,
    MESSAGING_DELIVERY_LIMIT,
    MESSAGING_QUEUE_TYPE,
    MESSAGING_QUEUES,
    VAR_DIR,
    broker_transport,
    broker_url_setting,
    databases,
    event_log_backend,
    event_log_redis_url,
    task_queues,
)
from .environment import env

DATABASES = databases(default_url="postgres://postgres@127.0.0.1:5432/test")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that worker processes see the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

CELERY_BROKER_URL = broker_url_setting(
    env.str("CELERY_BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
)
CELERY_BROKER_TRANSPORT, CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport(CELERY_BROKER_URL)
EVENT_LOG_BACKEND = event_log_backend(CELERY_BROKER_URL)

# The gateway's circuit breaker shared through Redis, quick to try again.
PAYMENT_GATEWAY_BREAKER_REDIS_URL = env.str(
    "PAYMENT_GATEWAY_BREAKER_REDIS_URL",
    default=env.str("REDIS_URL", default="redis://127.0.0.1:6379/0"),
)
PAYMENT_GATEWAY_BREAKER_RESET = env.float("PAYMENT_GATEWAY_BREAKER_RESET", default=1.0)
# The redis backend's stream, when a test (or EVENT_LOG_BACKEND=redis) picks it:
# its key names the test database, so it is the suite's own.
EVENT_LOG_REDIS_URL = event_log_redis_url(default="redis://127.0.0.1:6379/0")
# A gateway that answers at once; its timeout card still times out twice.
PAYMENT_GATEWAY_LATENCY = env.float("PAYMENT_GATEWAY_LATENCY", default=0.0)

# The flow tests run without a stream processor, so nothing would ever screen
# their orders; the screening tests turn it on (FRAUD_SCREENING=1 for their workers).
FRAUD_SCREENING = env.bool("FRAUD_SCREENING", default=False)

# Every process of the suite is instrumented, exporter or not: the tests give
# their own an in-memory exporter, and their workers run the no-op tracer's path.
TRACING_ENABLED = env.bool("TRACING_ENABLED", default=True)

# Fast retries so the tests see the whole backoff-then-dead-letter cycle.
MESSAGING_MAX_RETRIES = env.int("MESSAGING_MAX_RETRIES", default=3)
MESSAGING_RETRY_BACKOFF = env.float("MESSAGING_RETRY_BACKOFF", default=0.2)
MESSAGING_RETRY_BACKOFF_MAX = env.float("MESSAGING_RETRY_BACKOFF_MAX", default=1.0)
# Long enough for the relay (every second, a second's grace) to send what a
# broker's failure held back; short enough for a test to see the dead letter.
MESSAGING_RETRY_LATER_WINDOW = env.float("MESSAGING_RETRY_LATER_WINDOW", default=10.0)
# A quick relay, so the tests of the workers' relay wait seconds, not minutes.
MESSAGING_RELAY_INTERVAL = env.float("MESSAGING_RELAY_INTERVAL", default=1.0)
MESSAGING_RELAY_GRACE = env.float("MESSAGING_RELAY_GRACE", default=1.0)
# The tests' workers leave the outbox alone unless a test asks for their relay
# (MESSAGING_WORKER_RELAY=1 in its workers' environment): many tests leave
# messages pending on purpose, and run the relay themselves when they mean to.
MESSAGING_WORKER_RELAY = env.bool("MESSAGING_WORKER_RELAY", default=False)
# Late as readiness counts it: three of the quicker intervals and 10 s of slack.
READY_RELAY_MAX_AGE = env.float("READY_RELAY_MAX_AGE", default=3 * MESSAGING_RELAY_INTERVAL + 10)

# Every test worker's exporter on a port of its own, which its log names.
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)

# A probe app whose events and handlers exercise the backbone without any
# business domain; its queues exist only in tests.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.probe"]
# probe_c and probe_d are consumed only by tests/messaging/test_fan_out.py's worker,
# probe_e only by tests/messaging/test_quorum.py's.
PROBE_QUEUES = ["probe_a", "probe_b", "probe_c", "probe_d", "probe_e"]
MESSAGING_QUEUES = [*MESSAGING_QUEUES, *PROBE_QUEUES]
CELERY_TASK_QUEUES = [
    *CELERY_TASK_QUEUES,
    *task_queues(
        PROBE_QUEUES, queue_type=MESSAGING_QUEUE_TYPE, delivery_limit=MESSAGING_DELIVERY_LIMIT
    ),
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# The tests publish the probe app's messages (messaging.checks reads who publishes what),
# and play the fraud screen's stream processor, publishing OrderScreened.
MESSAGING_PUBLISHER_MODULES = [
    "tests.flow.test_fraud_screening",
    "tests.support.probes",
    "tests.messaging.test_delivery",
    "tests.messaging.test_dead_letters",
    "tests.messaging.test_fan_out",
    "tests.messaging.test_quorum",
]

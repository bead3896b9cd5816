"""Settings of the benchmark's processes: the project's own, plus the bench app and its queues.

The benchmark owns its broker vhost and database: both come from the
environment, defaulting to the ``bench`` vhost and the ``bench`` database, so
a benchmark never touches the data or queues of a development or test run.

Set by the harness for the processes that need it:

- ``BENCH_NO_CONFIRMS=1``: publish without waiting for RabbitMQ's confirm
  (the naive baseline and the bare Celery floor, as a user's plain Celery
  project would).
- ``BENCH_NAIVE=1``: the process runs the naive baseline (bench/naive.py).
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/bench")
# Every process of a run declares its queues alike, the web's production
# settings included (bench.settings_production): classic on one node, unless
# a phase asks for quorum.
os.environ.setdefault("MESSAGING_QUEUE_TYPE", "classic")
# A gateway that answers at once: the benchmark measures our code, not a sleep.
os.environ.setdefault("PAYMENT_GATEWAY_LATENCY", "0")
# No stream processor runs in the benchmark (as in the tests' flows), so no
# order would ever be screened: payments charges at once, as it did before.
os.environ.setdefault("FRAUD_SCREENING", "0")
# Emails are rendered and recorded but go nowhere (the console backend would
# write every one to the worker's log).
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
# Each worker serves its metrics as in production, on a free port of its own
# (several run on this machine); METRICS_ENABLED=0 measures the shop without them.
os.environ.setdefault("METRICS_WORKER_PORT", "0")

from config.settings.base import *  # noqa: F403
from config.settings.base import (
    CELERY_TASK_QUEUES,
    INSTALLED_APPS,
    MESSAGING_DELIVERY_LIMIT,
    MESSAGING_QUEUE_TYPE,
    MESSAGING_QUEUES,
    task_queues,
)

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
# The harness puts the probe's pings on its queue and in the outbox itself, as
# a producer would, without publish(): its handler is not one nothing reaches.
SILENCED_SYSTEM_CHECKS = ["messaging.E001"]

APP_QUEUES = ["orders", "payments", "inventory", "shipping", "notifications"]
# The naive baseline's tasks, one queue per app like ours.
NAIVE_QUEUES = [f"naive_{name}" for name in APP_QUEUES]
# The bare Celery floor's no-op tasks, one queue per app.
FLOOR_QUEUES = [f"floor_{name}" for name in APP_QUEUES]
# Our messaging layer's no-op handler (outbox drain, worker memory).
PROBE_QUEUE = "bench_probe"
BENCH_QUEUES = [*NAIVE_QUEUES, *FLOOR_QUEUES, PROBE_QUEUE]

MESSAGING_QUEUES = [*MESSAGING_QUEUES, PROBE_QUEUE]
CELERY_TASK_QUEUES = [
    *CELERY_TASK_QUEUES,
    *task_queues(
        BENCH_QUEUES, queue_type=MESSAGING_QUEUE_TYPE, delivery_limit=MESSAGING_DELIVERY_LIMIT
    ),
]

if os.environ.get("BENCH_NO_CONFIRMS") or os.environ.get("BENCH_NAIVE"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {}

# Experiments, off unless asked for (``python -m bench --experiment NAME,...``):
# they change what Celery does around our code, to measure what a change to
# the project's configuration would gain before anyone makes it.
BENCH_EXPERIMENTS = [x for x in os.environ.get("BENCH_EXPERIMENTS", "").split(",") if x]
if "db_reuse" in BENCH_EXPERIMENTS:
    # Celery's Django fixup closes every database connection before and
    # after each task unless told to reuse them.
    CELERY_DB_REUSE_MAX = 1000
if "no_results" in BENCH_EXPERIMENTS:
    # No TaskResult row per delivery (our handlers' return values are unused).
    CELERY_TASK_IGNORE_RESULT = True

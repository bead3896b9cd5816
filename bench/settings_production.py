"""The web phase's settings: production's, plus the bench app and its queues.

Our server and the naive baseline's (``BENCH_NAIVE=1``) run with these, so
that they differ only in how an order's event is published. The bench app
adds the naive twins' tasks and queues, and nothing on a request's path.
"""

from config.settings.production import *  # noqa: F403

from . import settings as _bench

INSTALLED_APPS = _bench.INSTALLED_APPS
MESSAGING_QUEUES = _bench.MESSAGING_QUEUES
CELERY_TASK_QUEUES = _bench.CELERY_TASK_QUEUES
MESSAGING_QUEUE_TYPE = _bench.MESSAGING_QUEUE_TYPE
MESSAGING_DELIVERY_LIMIT = _bench.MESSAGING_DELIVERY_LIMIT
# Without publisher confirms for the naive baseline, as in bench.settings.
CELERY_BROKER_TRANSPORT_OPTIONS = _bench.CELERY_BROKER_TRANSPORT_OPTIONS
APP_QUEUES = _bench.APP_QUEUES
NAIVE_QUEUES = _bench.NAIVE_QUEUES
FLOOR_QUEUES = _bench.FLOOR_QUEUES
PROBE_QUEUE = _bench.PROBE_QUEUE
BENCH_QUEUES = _bench.BENCH_QUEUES
BENCH_EXPERIMENTS = _bench.BENCH_EXPERIMENTS

"""The Celery application: its settings are Django's, under the CELERY_ prefix."""

import gc
import logging
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

from tracing.receivers import connect_worker as connect_tracing

from .connections import connect as connect_connection_handling

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


class PeriodicTasksQuiet(logging.Filter):
    """Leave out the INFO lines of the tasks beat runs every few seconds.

    The saga's deadline check runs every SAGA_DEADLINE_CHECK_INTERVAL (5 s):
    its "Sending due task", "received" and "succeeded" lines would be most of
    a quiet worker's log, burying the lines of the orders. A failing run is
    still logged (at ERROR), and the deliveries' lines stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        from django.conf import settings

        periodic = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
        args = record.args
        if isinstance(args, dict):  # the worker's "received" and "succeeded"
            return args.get("name") not in periodic
        if isinstance(args, tuple) and len(args) == 2:  # beat's "Sending due task %s (%s)"
            return args[1] not in periodic
        return True


for _name in ("celery.worker.strategy", "celery.app.trace", "celery.beat"):
    logging.getLogger(_name).addFilter(PeriodicTasksQuiet())


def describe_backends() -> str:
    """Say which broker and database this process uses, without passwords."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    where = database.get("HOST") or ""
    if database.get("PORT"):
        where = f"{where}:{database['PORT']}"
    location = f"{database['NAME']} on {where}" if where else str(database["NAME"])
    from messaging.broker_urls import sanitized

    broker = sanitized(app.conf.broker_url)
    if broker.startswith("filesystem://"):
        broker = f"filesystem (no server; messages in {settings.BROKER_DIR})"
    return f"broker: {broker} | database: {database['ENGINE'].rsplit('.', 1)[-1]} {location}"


@worker_init.connect
def _announce_backends(**kwargs) -> None:
    logger.info("Worker starting with %s", describe_backends())


@worker_init.connect
def _freeze_before_fork(**kwargs) -> None:
    # The prefork pool forks its children from this process after this
    # signal, and they share its pages until either side writes to them. A
    # full collection in the main process writes to the GC header of every
    # object it tracks: the first one (about a minute into a busy run) copies
    # some 32 MB of shared pages in each process. Frozen objects are never
    # scanned again, so their pages stay shared (see the gc.freeze docs).
    gc.collect()
    gc.freeze()


@worker_process_init.connect
def _leave_the_workers_process_group(**kwargs) -> None:
    # A process manager that stops the worker by signalling its process group
    # (honcho under `make run`, supervisord's stopasgroup, a test's killpg)
    # would also SIGTERM each pool process, which dies at once, mid-task, and
    # the worker logs "ERROR ... exited with 'signal 15 (SIGTERM)'". In a group
    # of its own a pool process hears only its worker, which on SIGTERM lets it
    # finish its task (a warm shutdown). Celery has already set it to receive
    # SIGKILL when the worker dies, so none outlives a killed worker.
    os.setpgid(0, 0)


# Around each task, what Django does around each request (config/connections.py).
connect_connection_handling()
# Spans from each pool process, not from the main process that forks them (tracing/).
connect_tracing()

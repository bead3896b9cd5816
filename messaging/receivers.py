"""Wiring: what the backbone does on Celery's and Django's signals (imported from ready())."""

from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_after_setup,
    celeryd_init,
    task_postrun,
    task_prerun,
)
from django.core.signals import request_finished, request_started

from . import logs

# The fields of a delivery's log lines, from before it starts to after Celery's own line.
task_prerun.connect(logs.delivery_started, dispatch_uid="messaging.logs.delivery_started")
task_postrun.connect(logs.delivery_finished, dispatch_uid="messaging.logs.delivery_finished")
# A web request's, from its start to after its response went (gunicorn's access line included).
request_started.connect(logs.request_started, dispatch_uid="messaging.logs.request_started")
request_finished.connect(logs.request_finished, dispatch_uid="messaging.logs.request_finished")
# A worker's own handlers, in JSON when LOG_FORMAT=json.
after_setup_logger.connect(logs.worker_logger_configured, dispatch_uid="messaging.logs.root")
after_setup_task_logger.connect(logs.worker_logger_configured, dispatch_uid="messaging.logs.task")
celeryd_init.connect(logs.worker_initialising, dispatch_uid="messaging.logs.worker_initialising")
celeryd_after_setup.connect(logs.worker_set_up, dispatch_uid="messaging.logs.worker_set_up")

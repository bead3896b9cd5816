"""Log lines that say which message they are about, as text or as JSON (LOG_FORMAT).

While a delivery runs (from Celery's task_prerun to its task_postrun, so that
Celery's own "Task ... succeeded" line is inside), every line a process
writes carries ``correlation_id``, ``message_id``, ``handler``, ``task_id``
and the payload fields MESSAGING_LOG_FIELDS names (``order_id``); during a
web request, what the request learnt: the correlation id and order id of what
it published, or of the order it shows (``messaging.context.log_fields_add``).
``ContextFilter`` stamps them on each record from ``messaging.context`` and
``JsonFormatter`` writes a record as one JSON object per line; the text
format leaves them out.

A worker's logging is Celery's (its handlers, ``-l``, ``-f``, stdout
redirected to the log): with LOG_FORMAT=json its handlers get the JSON
formatter and the filter, and the start-up banner becomes one JSON line.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

from .context import log_fields, log_fields_close, log_fields_open
from .subscriptions import handler_named

TEXT, JSON = "text", "json"
LOG_FORMATS = (TEXT, JSON)

logger = logging.getLogger(__name__)


class JsonFormatter(BaseJsonFormatter):
    """One JSON object per line: time, level, logger, process, message, then the context fields.

    Whatever else a record carries (``extra=``, the filter's fields, Celery's
    ``data``) is a key of its own; an exception is its traceback, in ``exc_info``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["levelname", "name", "processName", "message"])
        kwargs.setdefault(
            "rename_fields", {"levelname": "level", "name": "logger", "processName": "process"}
        )
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        # The time first, in UTC, as a person reading the lines looks for it.
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat()
        super().add_fields(log_data, record, message_dict)


class ContextFilter(logging.Filter):
    """Stamp each record with the fields of the delivery or the request under way."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_fields().items():
            if name not in record.__dict__:  # what the caller passed in extra= wins
                setattr(record, name, value)
        return True


def is_json() -> bool:
    return settings.LOG_FORMAT == JSON


def delivery_fields(*, handler_name: str, task_id: str | None, kwargs: dict | None) -> dict:
    """What a delivery's log lines carry, read from the task's keywords as they came.

    Read defensively: a message that is not an envelope still gets its
    handler and task id, and goes on to be dead-lettered.
    """
    fields: dict[str, Any] = {"handler": handler_name, "task_id": task_id}
    envelope = (kwargs or {}).get("envelope")
    if isinstance(envelope, dict):
        fields["message_id"] = envelope.get("message_id")
        fields["correlation_id"] = envelope.get("correlation_id")
        payload = envelope.get("payload")
        if isinstance(payload, dict):
            for name in settings.MESSAGING_LOG_FIELDS:
                fields[name] = payload.get(name)
    return {name: value for name, value in fields.items() if isinstance(value, str | int)}


# --- Receivers (messaging.receivers connects them) ---------------------------

# The fields each running task opened, by task id (a thread pool runs several).
_open: dict[str, object] = {}


def delivery_started(*, task_id: str, task, kwargs: dict | None = None, **_) -> None:
    if handler_named(task.name) is None:
        return
    fields = delivery_fields(handler_name=task.name, task_id=task_id, kwargs=kwargs)
    _open[task_id] = log_fields_open(**fields)


def delivery_finished(*, task_id: str, **_) -> None:
    token = _open.pop(task_id, None)
    if token is not None:
        log_fields_close(token)


def request_started(**_) -> None:
    # A sync worker thread serves one request after another: start afresh.
    log_fields_open()


def request_finished(**_) -> None:
    log_fields_close()


def worker_logger_configured(*, logger: logging.Logger, **_) -> None:
    """Celery set up a worker's handlers (the root's, the task logger's): JSON if asked."""
    if not is_json():
        return
    from celery.utils.log import get_multiprocessing_logger

    for configured in (logger, get_multiprocessing_logger()):
        for handler in getattr(configured, "handlers", []):
            handler.setFormatter(JsonFormatter())
            if not any(isinstance(f, ContextFilter) for f in handler.filters):
                handler.addFilter(ContextFilter())


def warnings_logged() -> None:
    """With JSON logs, Python's warnings are log lines too, rather than text on stderr.

    Called from MessagingConfig.ready(), in the web and the workers alike (a
    worker's first one comes before Celery sets up its logging: the one for
    a worker run as root).
    """
    if is_json():
        logging.captureWarnings(True)


def worker_initialising(*, instance, **_) -> None:
    """With JSON logs, no ASCII-art banner on stdout: it is logged as one line instead."""
    if is_json():
        instance.quiet = True


def worker_set_up(*, instance, **_) -> None:
    if is_json():
        logger.info("Celery worker started:\n%s", instance.startup_info(artlines=False))

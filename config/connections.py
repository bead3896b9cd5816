"""Database connections between requests and tasks: checked only after sitting idle.

Django closes a broken or aged connection around each request
(``close_old_connections``) and, with CONN_HEALTH_CHECKS, pings a reused
connection (SELECT 1) before its first query in the next request. A worker
does the same around each task. Under load that ping costs a round trip per
database for every request and every delivery, to learn what the previous
one proved a moment ago; here it is kept for connections that sat idle,
which are the ones a database restart or a proxy's idle timeout breaks.
"""

from __future__ import annotations

import threading
import time

from celery.signals import task_postrun, task_prerun
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections

# A connection this thread used this many seconds ago or less is trusted.
TRUST_CONNECTIONS_USED_WITHIN = 1.0

_local = threading.local()


def _finished(**kwargs) -> None:
    # Django's own receiver, connected first, has already dropped what broke.
    _local.last_used = time.monotonic()


def _started(**kwargs) -> None:
    # Runs after Django's close_old_connections, which asked for a new check.
    idle = time.monotonic() - getattr(_local, "last_used", float("-inf"))
    if idle > TRUST_CONNECTIONS_USED_WITHIN:
        return
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            # Django's attribute (4.1+), which django-stubs leaves out.
            connection.health_check_done = True  # type: ignore[attr-defined]


def _task_finished(**kwargs) -> None:
    close_old_connections()
    _finished()


def _task_started(**kwargs) -> None:
    close_old_connections()
    _started()


def connect() -> None:
    request_started.connect(_started, dispatch_uid="config.connections.started")
    request_finished.connect(_finished, dispatch_uid="config.connections.finished")
    task_prerun.connect(_task_started, dispatch_uid="config.connections.task_started")
    task_postrun.connect(_task_finished, dispatch_uid="config.connections.task_finished")

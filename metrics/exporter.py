"""Each Celery worker's metrics: its main process serves what its whole group counted.

A worker is a process group of its own: the main process (which
dead-letters what no handler can be given) and its pool's children (which
run the deliveries and the relay). When it starts, before the pool forks,
the main process empties the group's folder (``metrics.groups``) and serves
``GET /metrics`` on METRICS_WORKER_ADDRESS:METRICS_WORKER_PORT from a thread,
adding up every process's files at each scrape. It is served by the worker
itself rather than by the web, so that a worker on a machine (or in a
container) of its own is scraped where it runs, and a worker that is gone
is a target that is down, not counts that silently stop.

The folder is named by the worker's node name and its main process's pid,
since several workers on a machine may share a node name (Celery's default,
``celery@<host>``); the worker removes it when it stops, and one starting
removes those of workers killed before they could.

A port already taken is logged as an error and the worker runs on without
its exporter: metrics are never a reason not to process orders. Port 0 takes
a free one; the log says which.
"""

from __future__ import annotations

import logging
import os
import shutil

from django.conf import settings
from prometheus_client import start_http_server

from .groups import (
    group_folder,
    group_folders_of_dead_processes_remove,
    group_registry,
    group_start,
    process_dead,
)

FOLDER_PREFIX = "worker-"

logger = logging.getLogger(__name__)

_server = None
_folder = None


def exporter_start(sender, **kwargs) -> None:
    """worker_init, in the worker's main process before its pool forks: count and serve."""
    global _server, _folder
    node = sender.hostname
    group_folders_of_dead_processes_remove(settings.METRICS_DIR, FOLDER_PREFIX)
    name = f"{FOLDER_PREFIX}{node}-{os.getpid()}"
    folder = _folder = group_start(group_folder(settings.METRICS_DIR, name))
    address, port = settings.METRICS_WORKER_ADDRESS, settings.METRICS_WORKER_PORT
    try:
        _server, _ = start_http_server(port, addr=address, registry=group_registry(folder))
    except OSError as exc:
        logger.error(
            "Metrics: %s cannot serve its metrics on %s:%s (METRICS_WORKER_PORT): %s; "
            "it runs on without them",
            node,
            address,
            port,
            exc,
        )
        return
    logger.info(
        "Metrics: %s serves its metrics on http://%s:%s/metrics (files in %s)",
        node,
        address,
        _server.server_port,
        folder,
    )


def exporter_stop(sender=None, **kwargs) -> None:
    """worker_shutdown (its pool has stopped): let go of the port, remove the group's folder."""
    global _server, _folder
    if _server is not None:
        _server.shutdown()
        _server.server_close()
        _server = None
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
        _folder = None


_folder = None


def pool_process_gone(sender=None, pid: int | None = None, **kwargs) -> None:
    """worker_process_shutdown, in the pool child that ends: drop what counts only as it lives."""
    process_dead(pid or os.getpid())

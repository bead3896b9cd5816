"""One folder of metric files per process group: prometheus_client's multiprocess mode.

gunicorn's workers, and a Celery worker's main process and pool children,
are each a group of processes that one scrape must add up. In
prometheus_client's multiprocess mode every process counts in files of its
own (named by its pid) in the folder ``PROMETHEUS_MULTIPROC_DIR`` names, and
a scrape adds up every file there. Each group keeps its files in a folder of
its own, ``METRICS_DIR/<group>``, emptied when the group starts: files from
an earlier run would be added in again, and two groups sharing a folder
would each report the other's counts. A group's first process sets the
variable before it starts any other, so that they all inherit it.

This module imports no Django: gunicorn's master, which never does, uses it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess, values

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def group_folder(base: Path, name: str) -> Path:
    """The folder of one group under ``base``, its name made safe for a file name."""
    return Path(base) / re.sub(r"[^\w.@-]+", "_", name)


def group_start(folder: Path) -> Path:
    """Count this process, and those it starts from now on, in an emptied ``folder``.

    prometheus_client chooses between counting in memory and counting in
    files when it is first imported, which in a Celery worker is while
    Django sets up, before any worker signal, so the choice is made again
    here. That is safe only while no metric value exists yet: every metric
    of ours has labels, and a labelled metric makes its values per label
    set, on first use (prometheus_client's own tests switch the same way).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("*.db"):
        leftover.unlink()
    os.environ[VARIABLE] = str(folder)
    values.ValueClass = values.get_value_class()
    return folder


def group_folders_of_dead_processes_remove(base: Path, prefix: str) -> list[Path]:
    """Remove the folders ``<prefix>…-<pid>`` under ``base`` whose process is gone; which went.

    For groups that name their folder by their first process's pid (a
    worker's node name need not be unique on a machine): one killed before it
    could remove its own would otherwise stay for good.
    """
    removed = []
    for folder in Path(base).glob(f"{prefix}*"):
        found = re.search(r"-(\d+)$", folder.name)
        if folder.is_dir() and found and not _is_running(int(found.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def is_multiprocess() -> bool:
    """Whether this process counts in a group's files rather than in its own memory."""
    return VARIABLE in os.environ


def process_dead(pid: int) -> None:
    """Forget what a process of the group held that only counts while it lives (live gauges)."""
    if is_multiprocess():
        multiprocess.mark_process_dead(pid)


def group_registry(folder: Path | None = None) -> CollectorRegistry:
    """A registry that adds up every process's files in the group's folder (this one's if None)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder) if folder else None)
    return registry

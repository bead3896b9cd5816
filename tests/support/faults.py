"""Faults a test switches on in every process at once: its own and the workers'.

A fault is a flag file under VAR_DIR, so worker processes started long
before the test see it appear and go. The hooks are installed by the test
settings' probe app, never in production code.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings


def _flag(name: str) -> Path:
    return Path(settings.VAR_DIR) / "faults" / name


DUPLICATE_PUBLISH = "duplicate-publish"


def active(name: str) -> bool:
    return _flag(name).exists()


def clear(name: str) -> None:
    _flag(name).unlink(missing_ok=True)


@contextlib.contextmanager
def injected(name: str) -> Iterator[None]:
    flag = _flag(name)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    try:
        yield
    finally:
        clear(name)


# Set in one process's environment (not a flag file: only that process dies).
DIE_BEFORE_DISPATCH_ENV = "FAULT_DIE_BEFORE_DISPATCH"


def install() -> None:
    """Install the hooks of every fault; each does nothing until its fault is injected."""
    _install_duplicating_publisher()
    if os.environ.get(DIE_BEFORE_DISPATCH_ENV):
        _install_death_before_dispatch()


def _install_death_before_dispatch() -> None:
    """The process is killed (SIGKILL) after its commit, before the message reaches the broker."""
    from messaging import publishing

    def die(row) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    publishing._dispatch_after_commit = die


def _install_duplicating_publisher() -> None:
    """While the flag is up, every message is enqueued twice."""
    from messaging.consumers import Handler

    enqueue = Handler.enqueue
    if getattr(enqueue, "fault_hook", False):
        return

    def enqueue_maybe_twice(self, envelope, **kwargs) -> None:
        enqueue(self, envelope, **kwargs)
        if active(DUPLICATE_PUBLISH):
            enqueue(self, envelope, **kwargs)

    enqueue_maybe_twice.fault_hook = True
    Handler.enqueue = enqueue_maybe_twice

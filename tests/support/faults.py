"""Faults a test switches on in every process at once: its own and the workers'.

A fault is a flag file under VAR_DIR, so worker processes started long
before the test see it appear and go. The hooks are installed by the test
settings' probe app, never in production code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings


def _flag(name: str) -> Path:
    return Path(settings.VAR_DIR) / "faults" / name


DUPLICATE_PUBLISH = "duplicate-publish"


def active(name: str) -> bool:
    return _flag(name).exists()


@contextlib.contextmanager
def injected(name: str) -> Iterator[None]:
    flag = _flag(name)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    try:
        yield
    finally:
        flag.unlink(missing_ok=True)


def install() -> None:
    """A duplicating publisher: while the flag is up, every message is enqueued twice."""
    from messaging.consumers import Handler

    enqueue = Handler.enqueue
    if getattr(enqueue, "fault_hook", False):
        return

    def enqueue_maybe_twice(self, envelope) -> None:
        enqueue(self, envelope)
        if active(DUPLICATE_PUBLISH):
            enqueue(self, envelope)

    enqueue_maybe_twice.fault_hook = True
    Handler.enqueue = enqueue_maybe_twice

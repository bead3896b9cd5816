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


def failing_handler(name: str) -> str:
    """The fault under which the handler of this name fails permanently (a bug in it)."""
    return f"failing-handler-{name}"


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
    _install_failing_handlers()
    if os.environ.get(DIE_BEFORE_DISPATCH_ENV):
        _install_death_before_dispatch()


def _install_death_before_dispatch() -> None:
    """The process is killed (SIGKILL) after its commit, before the message reaches the broker."""
    from messaging import publishing

    def die(entries) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    publishing._dispatch_after_commit = die


def _install_duplicating_publisher() -> None:
    """While the flag is up, every message dispatched or relayed goes to each subscriber twice."""
    from messaging import outbox

    subscribers = outbox.subscribers
    if getattr(subscribers, "fault_hook", False):
        return

    def subscribers_maybe_twice(envelope, message=None):
        found = subscribers(envelope, message)
        return [h for h in found for _ in range(2)] if active(DUPLICATE_PUBLISH) else found

    subscribers_maybe_twice.fault_hook = True
    outbox.subscribers = subscribers_maybe_twice


def _install_failing_handlers() -> None:
    """While a handler's flag is up, it raises PermanentError before doing anything."""
    from messaging.errors import PermanentError
    from messaging.subscriptions import all_handlers

    for handler in all_handlers():
        if getattr(handler.fn, "fault_hook", False):
            continue

        def fn_unless_failing(message, envelope, fn=handler.fn, name=handler.name) -> None:
            if active(failing_handler(name)):
                raise PermanentError(f"{name} is broken for order {envelope.correlation_id}")
            fn(message, envelope)

        fn_unless_failing.fault_hook = True  # type: ignore[attr-defined]
        fn_unless_failing.__module__ = handler.fn.__module__
        fn_unless_failing.__qualname__ = handler.fn.__qualname__
        handler.fn = fn_unless_failing

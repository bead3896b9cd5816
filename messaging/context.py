"""The message being handled in this context, so that what a handler publishes follows from it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .messages import Envelope

_current: ContextVar[Envelope | None] = ContextVar("current_envelope", default=None)


def current_envelope() -> Envelope | None:
    """The envelope being handled in this context, if any."""
    return _current.get()


@contextmanager
def handling(envelope: Envelope) -> Iterator[None]:
    """Mark ``envelope`` as the cause of whatever is published inside the block."""
    token = _current.set(envelope)
    try:
        yield
    finally:
        _current.reset(token)

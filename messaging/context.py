"""What is being handled in this context: the message, for what a handler publishes, and the
fields every log line written meanwhile carries (``messaging.logs``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .messages import Envelope

_current: ContextVar[Envelope | None] = ContextVar("current_envelope", default=None)
# The fields of the delivery or the web request under way; None outside one.
_log_fields: ContextVar[dict[str, str] | None] = ContextVar("log_fields", default=None)


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


def log_fields() -> Mapping[str, str]:
    """The fields the log lines written now carry (correlation id, message id, ...)."""
    return _log_fields.get() or {}


def log_fields_open(**fields: Any) -> object:
    """Start the fields of a delivery or a request, replacing any left over; returns a token.

    Opened and closed by signals (a task's prerun and postrun, a request's start
    and end) rather than by a block, since Celery and Django log a line of
    their own after the handler or the view returned.
    """
    return _log_fields.set({name: str(value) for name, value in fields.items() if value})


def log_fields_close(token: object | None = None) -> None:
    """End the fields opened by ``log_fields_open`` (with its token when it is at hand)."""
    if token is not None:
        try:
            _log_fields.reset(token)  # type: ignore[arg-type]
            return
        except ValueError:  # opened in another context (an ASGI thread hop)
            pass
    _log_fields.set(None)


def log_fields_add(**fields: Any) -> None:
    """Add what became known meanwhile (the order a request placed) to the open fields.

    Outside a delivery or a request there is nothing to add to, and nothing happens.
    """
    current = _log_fields.get()
    if current is not None:
        current.update({name: str(value) for name, value in fields.items() if value})

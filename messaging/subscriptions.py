"""The subscription table: which handler takes which message, on which queue.

Every route to a queue reads it here: the dispatch after commit and the
relay ask ``subscribers(envelope)``; a redrive addresses the handler its dead
letter names (``handler_named``); a retry goes back to the delivery's own
handler. A command has exactly one handler, an
event any number; a handler's ``when`` filter is applied by ``subscribers``,
so a message it refuses is never even put on the handler's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .messages import Envelope, Message, registry


@dataclass(eq=False)
class Handler:
    """A function that reacts to messages of the given classes, consumed from ``queue``."""

    # Any: each takes a message of one of message_classes, which a Callable cannot say.
    fn: Callable[[Any, Envelope], None]
    message_classes: tuple[type[Message], ...]
    queue: str
    name: str
    when: Callable[[Any], bool] | None = None

    def __repr__(self) -> str:
        return f"<Handler {self.name} on {self.queue!r}>"

    def __call__(self, message: Message, envelope: Envelope) -> None:
        self.fn(message, envelope)

    def wants(self, message: Message) -> bool:
        """Whether this handler takes this message at all (its ``when`` filter)."""
        return self.when is None or self.when(message)


_by_name: dict[str, Handler] = {}
_by_message: dict[type[Message], list[Handler]] = {}


def subscribe(handler: Handler) -> None:
    """Add a handler to the table for each message class it handles."""
    known = _by_name.get(handler.name)
    if known is not None and _origin(known) != _origin(handler):
        raise ImproperlyConfigured(f"two handlers are named {handler.name}")
    for message_class in handler.message_classes:
        subscribed = _by_message.setdefault(message_class, [])
        if any(h.name == handler.name for h in subscribed):
            continue
        if message_class.kind == "command" and subscribed:
            raise ImproperlyConfigured(
                f"the command {message_class.message_type} already has a handler "
                f"({subscribed[0].name}); a command goes to exactly one"
            )
        subscribed.append(handler)
    _by_name[handler.name] = handler


def _origin(handler: Handler) -> tuple[str, str]:
    # A module imported twice declares its handlers again: the same ones.
    return (handler.fn.__module__, handler.fn.__qualname__)


def subscribers(envelope: Envelope, message: Message | None = None) -> list[Handler]:
    """The handlers this message goes to, after their ``when`` filters.

    ``message`` is the payload already read, when the caller has it; it is
    read from the envelope only if a filter needs it. Raises MessageError
    for a type or version this process does not know.
    """
    handlers = _by_message.get(registry.get(envelope.type, envelope.version), [])
    if any(handler.when is not None for handler in handlers):
        message = message if message is not None else registry.read(envelope)
        return [handler for handler in handlers if handler.wants(message)]
    return list(handlers)


def handlers_for(message_class: type[Message]) -> list[Handler]:
    """Every handler subscribed to this message class, filters aside."""
    return list(_by_message.get(message_class, []))


def handler_named(name: str) -> Handler | None:
    return _by_name.get(name)


def all_handlers() -> list[Handler]:
    return list(_by_name.values())

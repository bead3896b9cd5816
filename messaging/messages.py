"""Messages, their envelope, and the registry that maps (type, version) to a schema.

An event is a fact that already happened (past tense, broadcast to every
subscriber); a command asks exactly one handler to do something (imperative).
Both are Pydantic models. Subclassing Event or Command registers the class
under its type name (the class name unless ``message_type`` says otherwise)
and its ``message_version``.

Schema evolution: unknown fields are ignored and missing optional fields take
their defaults, so adding an optional field keeps version 1 readable by every
consumer. A change that breaks old readers (renaming, removing, changing a
meaning) is a new version: a new class with the same ``message_type`` and the
next ``message_version``, published side by side until every consumer reads it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError


class MessageError(Exception):
    """A message that cannot be read: it will never succeed, however often it is retried."""

    reason = "malformed"


class UnknownMessage(MessageError):
    reason = "unknown_message"


class InvalidPayload(MessageError):
    reason = "invalid_payload"


class MessageTooLarge(MessageError):
    """Larger than MESSAGING_MAX_MESSAGE_BYTES: refused when published, dead-lettered unread."""

    reason = "oversized"


class Message(BaseModel):
    """Base of events and commands: an immutable, schema-checked payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: ClassVar[Literal["event", "command"]]
    message_type: ClassVar[str]
    message_version: ClassVar[int] = 1

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("__abstract__", False):
            return
        if "message_type" not in cls.__dict__:
            cls.message_type = cls.__name__
        registry.register(cls)

    @classmethod
    def key(cls) -> tuple[str, int]:
        return (cls.message_type, cls.message_version)


class Event(Message):
    """Something that happened. Name it in the past tense: ``OrderPlaced``."""

    __abstract__ = True
    kind: ClassVar[Literal["event", "command"]] = "event"


class Command(Message):
    """A request for one handler to act. Name it in the imperative: ``ChargePayment``."""

    __abstract__ = True
    kind: ClassVar[Literal["event", "command"]] = "command"


class Envelope(BaseModel):
    """What travels on the wire: the payload plus who, what, when and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: UUID
    kind: Literal["event", "command"]
    type: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    # One per business conversation (an order, say): every message that
    # follows from the first carries it.
    correlation_id: str = Field(min_length=1, max_length=100)
    # The message whose handling produced this one; None for a first cause.
    causation_id: UUID | None = None
    payload: dict[str, Any]
    # W3C trace context (https://www.w3.org/TR/trace-context/) of the span that
    # recorded this message, so that its sending and its deliveries join that
    # trace, however late and from whichever process. None with tracing off,
    # and in envelopes written before it existed. Not checked beyond its type:
    # a malformed one starts a new trace, it never makes a message unreadable.
    traceparent: str | None = None
    tracestate: str | None = None

    def to_wire(self) -> dict[str, Any]:
        # Without a trace context the wire form is what it was before there was one.
        absent = {name for name in TRACE_CONTEXT_FIELDS if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=absent or None)


# The envelope's trace context fields, left off the wire when empty.
TRACE_CONTEXT_FIELDS = ("traceparent", "tracestate")


class MessageRegistry:
    """Maps (type, version) to the Pydantic model that reads it."""

    def __init__(self) -> None:
        self._classes: dict[tuple[str, int], type[Message]] = {}

    def register(self, message_class: type[Message]) -> None:
        key = message_class.key()
        known = self._classes.get(key)
        if known is not None and (known.__module__, known.__qualname__) != (
            message_class.__module__,
            message_class.__qualname__,
        ):
            raise TypeError(
                f"{key[0]} v{key[1]} is already defined by {known.__module__}.{known.__qualname__}"
            )
        self._classes[key] = message_class

    def get(self, message_type: str, version: int) -> type[Message]:
        try:
            return self._classes[(message_type, version)]
        except KeyError:
            known = sorted(v for (t, v) in self._classes if t == message_type)
            hint = f" (known versions: {known})" if known else ""
            raise UnknownMessage(
                f"unknown message type {message_type!r} version {version}{hint}"
            ) from None

    def __iter__(self):
        return iter(self._classes.values())

    def read(self, envelope: Envelope) -> Message:
        """Validate an envelope's payload against the schema its type and version name."""
        message_class = self.get(envelope.type, envelope.version)
        if message_class.kind != envelope.kind:
            raise UnknownMessage(
                f"{envelope.type} v{envelope.version} is a {message_class.kind}, "
                f"not a {envelope.kind}"
            )
        try:
            return message_class.model_validate(envelope.payload)
        except ValidationError as exc:
            raise InvalidPayload(
                f"{envelope.type} v{envelope.version} payload is invalid: {_errors(exc)}"
            ) from exc


def envelope_read(data: Any) -> Envelope:
    """Parse wire data into an Envelope, or raise MessageError saying what is wrong."""
    if not isinstance(data, dict):
        raise MessageError(f"expected an envelope object, got {type(data).__name__}")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise MessageError(f"envelope is invalid: {_errors(exc)}") from exc


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '(root)'}: {error['msg']}"
        for error in exc.errors()
    )


registry = MessageRegistry()

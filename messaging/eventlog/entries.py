"""What a log holds and how it is read: entries, offsets, readers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ..messages import Envelope, MessageError, envelope_read

# Where a reader starts: the first entry kept, the entries appended from now
# on, the entry at an offset, or the first entry at or after a time.
Start = Literal["first", "next"] | int | datetime


class LogError(Exception):
    """The log cannot be read as asked (an offset it does not hold, a broker refusing)."""


@dataclass(frozen=True)
class LogEntry:
    """One entry: its offset, and its envelope, or why it could not be read."""

    offset: int
    envelope: Envelope | None
    error: str = ""
    raw: str = ""

    @classmethod
    def from_task_body(cls, offset: int, body: bytes | str) -> LogEntry:
        """An entry from a published task message's body: ``[args, {"envelope": …}, embed]``."""
        try:
            # Parsed and validated in one pass by pydantic-core, the common case.
            return cls(offset, _TASK_BODY.validate_json(body)[1].envelope)
        except ValidationError:
            pass  # read again below, to say what is wrong with it
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            decoded = json.loads(text)
            envelope = decoded[1]["envelope"]
        except (ValueError, LookupError, TypeError) as exc:
            return cls(offset, None, f"not a task message with an envelope: {exc}", text[:10000])
        return cls.from_wire(offset, envelope, raw=text)

    @classmethod
    def from_wire(cls, offset: int, data: object, *, raw: str = "") -> LogEntry:
        try:
            return cls(offset, envelope_read(data))
        except MessageError as exc:
            return cls(offset, None, str(exc), (raw or json.dumps(data, default=str))[:10000])


class _TaskKwargs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    envelope: Envelope


_TASK_BODY = TypeAdapter(tuple[Any, _TaskKwargs, Any])


class LogReader(Protocol):
    def read(self, *, max_entries: int, timeout: float) -> list[LogEntry]:
        """The next entries in order: as soon as some are there, at most ``max_entries``.

        Waits up to ``timeout`` seconds for the first; an empty list means none came.
        """

    def close(self) -> None: ...


class EventLog(Protocol):
    name: str

    def reader(self, start: Start) -> LogReader: ...

    def head(self) -> int | None:
        """The offset of the last entry, None while the log is empty."""

    def first(self) -> int | None:
        """The offset of the first entry kept, None while the log is empty."""

    def append(self, envelopes: Sequence[Envelope]) -> None:
        """Add dispatched events, once the broker has confirmed them (``log_append``).

        Raises when they could not be added. A no-op where the dispatch's own
        publish makes the copy (rabbitmq) or the log is the outbox (database).
        """

    def entries_between(self, after: int | None, upto: int, *, limit: int) -> int | None:
        """How many entries come after ``after`` (from the first kept, if None) up to ``upto``.

        Where offsets are consecutive it is their difference; a log that counts
        entry by entry (redis) stops past ``limit`` and returns None.
        """


def consecutive_between(after: int | None, upto: int) -> int:
    """Entries between two offsets of a log whose offsets go up one by one from 0.

    The database's ids count its commands too: there it is an upper bound.
    """
    return max(0, upto - (after if after is not None else -1))

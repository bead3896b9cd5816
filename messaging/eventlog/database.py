"""The log as the outbox table: its events in id order (the embedded default).

The outbox already keeps every event, committed with its producer's
changes; the offset is the row's id. On SQLite, whose writers take turns, id
order is commit order, so a reader that has passed an id never sees a
smaller one appear later. (On PostgreSQL concurrent transactions commit out
of id order: use the rabbitmq backend there.)
"""

from __future__ import annotations

import time
from datetime import datetime

from django.db.models import Max, Min

from ..models import ENVELOPE_FIELDS, OutboxMessage
from .entries import LogEntry, LogError, Start, consecutive_between

# Seconds between two looks at the table while there is nothing new.
POLL_INTERVAL = 0.05


def _events():
    return OutboxMessage.objects.filter(kind=OutboxMessage.Kind.EVENT)


class TableReader:
    def __init__(self, after: int) -> None:
        self.after = after

    def read(self, *, max_entries: int, timeout: float) -> list[LogEntry]:
        deadline = time.monotonic() + timeout
        while True:
            rows = list(
                _events()
                .filter(id__gt=self.after)
                .order_by("id")
                .values("id", *ENVELOPE_FIELDS)[:max_entries]
            )
            left = deadline - time.monotonic()
            if rows or left <= 0:
                break
            time.sleep(min(POLL_INTERVAL, left))
        if rows:
            self.after = rows[-1]["id"]
        return [LogEntry.from_wire(row.pop("id"), row) for row in rows]

    def close(self) -> None:
        pass


class TableLog:
    name = "database"

    def reader(self, start: Start) -> TableReader:
        if start == "first":
            return TableReader(0)
        if start == "next":
            return TableReader(self.head() or 0)
        if isinstance(start, datetime):
            first = _events().filter(occurred_at__gte=start).order_by("id").first()
            return TableReader(first.pk - 1 if first else self.head() or 0)
        if isinstance(start, int) and not isinstance(start, bool):
            return TableReader(start - 1)
        raise LogError(f"a log reader starts at first, next, an offset or a time, not {start!r}")

    def head(self) -> int | None:
        return _events().aggregate(last=Max("id"))["last"]

    def append(self, envelopes) -> None:
        """Nothing to do: the log is the outbox table, written by the producer."""

    def entries_between(self, after: int | None, upto: int, *, limit: int) -> int | None:
        return consecutive_between(after, upto)

    def first(self) -> int | None:
        return _events().aggregate(first=Min("id"))["first"]

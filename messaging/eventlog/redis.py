"""The log as a Redis stream, read with XREAD from an explicit id.

The key is ``<EVENT_LOG_REDIS_NAMESPACE>:<database name>:<EVENT_LOG_REDIS_KEY>``
on EVENT_LOG_REDIS_URL (default ``eventshop:<database>:events``), so sites
sharing a Redis keep apart, as the gateway breaker's keys do. Each entry has
one field, ``envelope``, the envelope's JSON.

Appending. No publish reaches Redis, so the dispatch appends the events
itself (``append``, from ``messaging.outbox``): once the broker has confirmed
the batch and before its rows are marked dispatched, in one MULTI/EXEC
pipeline of XADDs. When the append fails the rows are not marked: the relay
sends them again and appends them then, so an event is in the log if and
only if it was dispatched (a copy sent twice is appended twice; readers
deduplicate by message id). Each XADD trims the stream to about
EVENT_LOG_REDIS_MAX_LENGTH entries (``MAXLEN ~``, whole nodes at a time).
There is no trimming by age (MINID): in a quiet spell it would remove the
newest entry, the one an idle processor last took, and a processor could no
longer tell a log that was trimmed from one that was lost (see
``analytics.runner``).

Offsets. A stream id ``ms-seq`` is the offset ``ms << 20 | seq``: lossless,
ordered as the ids are, and within PostgreSQL's bigint until the year 2248.
A sequence number of 2**20 or more (over a million entries in one
millisecond, or a clock that went back that far) has no offset, and is
refused with an error. Offsets are not consecutive, so counting entries
(``entries_between``: the lag, a replay's progress) is done by Redis.

No consumer groups. A processor's position is its offset in PostgreSQL,
committed in the transaction that commits its state: that is what lets
``kill -9`` lose and double nothing. A group would be a second position,
moved by XREADGROUP before that commit and by XACK after it, neither in the
transaction: after a crash its pending list would hold entries the
processor had committed, XAUTOCLAIM would hand them to another consumer, and
a restarted processor would have to ignore the group and read from its own
offset anyway. What a group would show (``XINFO GROUPS``: position, lag) the
admin's *Stream processors* page already shows from the offsets that count.

Durability is the Redis server's: one that keeps nothing on disk loses the
whole log when it restarts (README, "The event stream").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..messages import Envelope
from .entries import LogEntry, LogError, Start

SEQ_BITS = 20
SEQ_LIMIT = 1 << SEQ_BITS
# The largest millisecond whose offsets fit a signed 64-bit integer.
MS_LIMIT = 1 << (63 - SEQ_BITS)
# The field an entry keeps its envelope in.
FIELD = b"envelope"
# The longest a reader's XREAD blocks; the socket timeout leaves room above it.
MAX_BLOCK = 5.0
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 2.0

# Counts the entries in an id range, at most ARGV[3], without sending them.
COUNT_SCRIPT = """
local n, start, limit = 0, ARGV[1], tonumber(ARGV[3])
while n < limit do
  local batch = redis.call('XRANGE', KEYS[1], start, ARGV[2], 'COUNT', math.min(1000, limit - n))
  if #batch == 0 then break end
  n = n + #batch
  start = '(' .. batch[#batch][1]
end
return n
"""


def offset_of(stream_id: bytes | str) -> int:
    """The offset of a stream id ``ms-seq``: ``ms << 20 | seq``."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    milliseconds, sequence = int(ms), int(seq)
    if sequence >= SEQ_LIMIT:
        raise LogError(
            f"the stream entry {text} has a sequence number of 2**{SEQ_BITS} or more, which no "
            "offset can hold (over a million entries in one millisecond, or Redis's clock went "
            "back): the log cannot be read past it"
        )
    if milliseconds >= MS_LIMIT:
        raise LogError(f"the stream entry {text} is too far in the future for an offset")
    return milliseconds << SEQ_BITS | sequence


def stream_id(offset: int) -> str:
    """The stream id of an offset, the inverse of ``offset_of``."""
    if offset < 0:
        raise LogError(f"an offset is not negative, not {offset}")
    return f"{offset >> SEQ_BITS}-{offset & (SEQ_LIMIT - 1)}"


def stream_key() -> str:
    """The stream's key: one log per site (namespace) and database."""
    return (
        f"{settings.EVENT_LOG_REDIS_NAMESPACE}:{connection.settings_dict['NAME']}:"
        f"{settings.EVENT_LOG_REDIS_KEY}"
    )


def entry_of(entry_id: bytes, fields: dict[bytes, bytes]) -> LogEntry:
    """A log entry from a stream entry: its envelope, or why it has none."""
    offset = offset_of(entry_id)
    body = fields.get(FIELD)
    if body is None:
        raw = json.dumps(
            {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
        )
        names = ", ".join(sorted(k.decode(errors="replace") for k in fields)) or "none"
        return LogEntry(
            offset, None, f"no envelope field in the entry (its fields: {names})", raw[:10000]
        )
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return LogEntry(offset, None, f"the envelope field is not JSON: {exc}", text[:10000])
    return LogEntry.from_wire(offset, data, raw=text)


@functools.cache
def _client(url: str) -> redis.Redis:
    """The pooled client that appends and looks at the edges.

    One retry: a pooled connection that a Redis restart closed is replaced
    rather than failing a dispatch (an append sent twice is two entries, which
    readers deduplicate).
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
    )


def _reading_client(url: str) -> redis.Redis:
    """A reader's own connection, never reconnected behind its back.

    A pooled connection would reconnect to a restarted Redis and go on
    waiting on whatever stream is there now; this one fails, the runner sees
    the error and checks that the log still holds its offset.
    """
    return redis.Redis.from_url(
        url,
        single_connection_client=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


class RedisReader:
    """Reads the stream after ``after`` (a stream id), in order, with XREAD."""

    def __init__(self, log: RedisLog, after: str) -> None:
        self.log = log
        self.after = after
        self.client = _reading_client(log.url)

    def read(self, *, max_entries: int, timeout: float) -> list[LogEntry]:
        # BLOCK 0 would wait for ever: no wait is no BLOCK at all.
        block = max(1, round(min(timeout, MAX_BLOCK) * 1000)) if timeout > 0 else None
        try:
            reply = self.client.xread({self.log.key: self.after}, count=max_entries, block=block)
        except redis.RedisError as exc:
            raise self.log.error("read", exc) from exc
        entries = _stream_entries(reply)
        if not entries:
            return []
        self.after = entries[-1][0].decode()
        return [entry_of(entry_id, fields) for entry_id, fields in entries]

    def close(self) -> None:
        self.client.close()


def _stream_entries(reply) -> list:
    # RESP2 answers [[key, entries]], RESP3 {key: [entries]}.
    if not reply:
        return []
    if isinstance(reply, dict):
        return next(iter(reply.values()))[0]
    return reply[0][1]


class RedisLog:
    name = "redis"

    def __init__(self, *, url: str | None = None, key: str | None = None) -> None:
        self.url = url if url is not None else settings.EVENT_LOG_REDIS_URL
        if not self.url:
            raise LogError(
                "EVENT_LOG_BACKEND='redis' needs a Redis: set EVENT_LOG_REDIS_URL (or REDIS_URL)"
            )
        self.key = key or stream_key()

    @property
    def client(self) -> redis.Redis:
        return _client(self.url)

    def error(self, doing: str, exc: Exception) -> LogError:
        return LogError(
            f"cannot {doing} the event log (Redis {_where(self.url)}, "
            f"stream {self.key}): {type(exc).__name__}: {exc}"
        )

    def reader(self, start: Start) -> RedisReader:
        if start == "first":
            return RedisReader(self, "0-0")
        if start == "next":
            head = self.head()
            return RedisReader(self, stream_id(head) if head is not None else "0-0")
        if isinstance(start, datetime):
            # The first entry at or after the time: from the id ms-0 on.
            milliseconds = max(0, int(start.timestamp() * 1000))
            return RedisReader(self, _before(milliseconds << SEQ_BITS))
        if isinstance(start, int) and not isinstance(start, bool):
            if start < 0:
                raise LogError(
                    f"a log reader starts at an offset that is not negative, not {start}"
                )
            return RedisReader(self, _before(start))
        raise LogError(f"a log reader starts at first, next, an offset or a time, not {start!r}")

    def head(self) -> int | None:
        return self._edge(self.client.xrevrange, "+", "-", "look at")

    def first(self) -> int | None:
        return self._edge(self.client.xrange, "-", "+", "look at")

    def _edge(self, command, start: str, end: str, doing: str) -> int | None:
        try:
            entries = command(self.key, start, end, count=1)
        except redis.RedisError as exc:
            raise self.error(doing, exc) from exc
        return offset_of(entries[0][0]) if entries else None

    def append(self, envelopes: Sequence[Envelope]) -> None:
        """Add the events, all or none, trimming the stream to about its maximum length."""
        if not envelopes:
            return
        pipeline = self.client.pipeline(transaction=True)
        for envelope in envelopes:
            pipeline.xadd(
                self.key,
                {FIELD: envelope.model_dump_json()},
                maxlen=settings.EVENT_LOG_REDIS_MAX_LENGTH,
                approximate=True,
            )
        try:
            added = pipeline.execute()
        except redis.RedisError as exc:
            raise self.error("append to", exc) from exc
        for entry_id in added:
            offset_of(entry_id)

    def entries_between(self, after: int | None, upto: int, *, limit: int) -> int | None:
        """Counted by Redis entry by entry, so only up to ``limit`` (None: more than that)."""
        try:
            if after is None or after < (self.first() or 0):
                # From the first entry kept: to the head, that is the stream's length.
                if upto >= (self.head() or 0):
                    return self.client.xlen(self.key)
                start = "-"
            else:
                start = f"({stream_id(after)}"
            counted = _count_script(self.url)(
                keys=[self.key], args=[start, stream_id(upto), limit + 1]
            )
        except redis.RedisError as exc:
            raise self.error("count the entries of", exc) from exc
        return counted if counted <= limit else None


@functools.cache
def _count_script(url: str):
    return _client(url).register_script(COUNT_SCRIPT)


def _where(url: str) -> str:
    """A Redis URL without its credentials, for an error message."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _before(offset: int) -> str:
    """The id XREAD starts after so that the entry at ``offset`` is the first it returns."""
    return stream_id(offset - 1) if offset > 0 else "0-0"

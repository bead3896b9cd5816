"""Retries counted per app queue and minute in Redis, for the staff dashboard.

The backbone keeps no record of a retry (only of what took effect, in the
inbox, and of what failed for good, in the dead letters); ``delivery_retried``
says when one was published, and ``retry_count`` adds it to its queue's
counter for that minute. Counting must never slow or fail a delivery: Redis is
asked with a 0.2 s timeout, a failure is logged at most once a minute and
swallowed, and Redis is left alone for a few seconds after one. Without
REDIS_URL nothing is counted and ``retries_recent`` says None.
"""

from __future__ import annotations

import functools
import logging
import time

import redis
from django.conf import settings

from .channels import prefix

logger = logging.getLogger(__name__)

# Counters outlive the dashboard's window (this minute and the four before) by a margin.
COUNTER_TTL = 15 * 60
SOCKET_TIMEOUT = 0.2
# After a failure Redis is not asked again for this many seconds (a delivery
# would otherwise wait for the timeout every time), nor the failure logged
# again for LOG_EVERY.
PAUSE_AFTER_FAILURE = 5.0
LOG_EVERY = 60.0

_paused_until = 0.0
_logged_at = float("-inf")


class RetriesUnavailable(Exception):
    """Retries are not counted here: no Redis configured, or it does not answer."""


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
    )


def _key(queue: str, minute: int) -> str:
    return f"{prefix()}retries:{queue}:{minute}"


def _failed(exc: Exception, doing: str) -> None:
    global _paused_until, _logged_at
    now = time.monotonic()
    _paused_until = now + PAUSE_AFTER_FAILURE
    if now - _logged_at >= LOG_EVERY:
        _logged_at = now
        logger.warning("Retry counter: Redis failed %s (logged once a minute): %s", doing, exc)


def retry_count(*, queue: str, at: float | None = None) -> None:
    """Add one retry to the queue's counter for the minute of ``at`` (now); never raises."""
    url = settings.REDIS_URL
    if not url or time.monotonic() < _paused_until:
        return
    minute = int((time.time() if at is None else at) // 60)
    key = _key(queue, minute)
    try:
        pipe = _client(url).pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, COUNTER_TTL)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        _failed(exc, "to count a retry")


def retries_recent(queues: list[str], *, minutes: int = 5) -> dict[str, int]:
    """Retries per queue in this minute and the ``minutes - 1`` before it (one MGET).

    Raises RetriesUnavailable, saying why, without Redis or when it does not answer.
    """
    url = settings.REDIS_URL
    if not url:
        raise RetriesUnavailable("not counted without Redis (REDIS_URL is not set)")
    if time.monotonic() < _paused_until:
        raise RetriesUnavailable("Redis failed a moment ago; trying again in a few seconds")
    last = int(time.time() // 60)
    window = range(last - minutes + 1, last + 1)
    keys = [_key(queue, minute) for queue in queues for minute in window]
    try:
        values = _client(url).mget(keys) if keys else []
    except (redis.RedisError, OSError) as exc:
        _failed(exc, "to read the retry counts")
        raise RetriesUnavailable(f"Redis does not answer: {exc}") from exc
    counts = [int(value or 0) for value in values]
    return {queue: sum(counts[i * minutes : (i + 1) * minutes]) for i, queue in enumerate(queues)}

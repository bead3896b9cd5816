"""The card gateway behind a circuit breaker that every payments worker process shares.

After PAYMENT_GATEWAY_BREAKER_FAILURES failed calls in a row (unreachable or
timed out; a declined card is an answer, not a failure) the breaker opens:
for PAYMENT_GATEWAY_BREAKER_RESET seconds no process calls the gateway, and
each payment is put off until then without using up its retries. Then one
trial call goes through; a success closes the breaker, a failure opens it
again.

The state lives in Redis (PAYMENT_GATEWAY_BREAKER_REDIS_URL), so that all
worker processes on all machines see the same breaker. Without Redis, or if
it cannot be reached when a process first needs the breaker, that process
keeps one of its own. If Redis goes away later, the shared breaker reads as
closed (pybreaker's fallback) and payments retry with their usual backoff.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pybreaker
from django.conf import settings
from django.db import connection

from gateway import client as gateway
from messaging.errors import DependencyUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _LogStateChanges(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state) -> None:
        if old_state is not None and old_state.name == new_state.name:
            return
        logger.warning(
            "Card gateway circuit breaker %s -> %s",
            old_state.name if old_state else "-",
            new_state.name,
        )


def _namespace() -> str:
    # One breaker per deployment, told apart by its database.
    return f"{settings.PAYMENT_GATEWAY_BREAKER_NAMESPACE}:{connection.settings_dict['NAME']}"


class GatewayBreaker(pybreaker.CircuitBreaker):
    def __init__(self, storage: pybreaker.CircuitBreakerStorage):
        super().__init__(
            fail_max=settings.PAYMENT_GATEWAY_BREAKER_FAILURES,
            reset_timeout=settings.PAYMENT_GATEWAY_BREAKER_RESET,
            # The gateway answered: it is up, whatever it said.
            exclude=[gateway.GatewayError],
            listeners=[_LogStateChanges()],
            state_storage=storage,
            name="card gateway",
        )
        self.storage = storage

    def seconds_until_trial(self) -> float:
        """How long until the open breaker lets a trial call through."""
        opened_at = self.storage.opened_at or datetime.now(UTC)
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()
        return max(self.reset_timeout - elapsed, 0.0)


@functools.cache
def _local_breaker() -> GatewayBreaker:
    return GatewayBreaker(pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED))


@functools.cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


_shared: dict[tuple[str, str], GatewayBreaker] = {}
_redis_retry_at: dict[str, float] = {}
REDIS_RETRY_SECONDS = 30.0


def breaker() -> GatewayBreaker:
    """The shared breaker, or this process's own while Redis cannot be reached."""
    url = settings.PAYMENT_GATEWAY_BREAKER_REDIS_URL
    if not url:
        return _local_breaker()
    key = (url, _namespace())
    if key not in _shared:
        if time.monotonic() < _redis_retry_at.get(url, 0):
            return _local_breaker()
        import redis

        try:
            storage = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, _redis(url), namespace=key[1]
            )
        except redis.RedisError as exc:
            logger.warning(
                "Card gateway breaker: Redis unreachable, using this process's own for %ss: %s",
                REDIS_RETRY_SECONDS,
                exc,
            )
            _redis_retry_at[url] = time.monotonic() + REDIS_RETRY_SECONDS
            return _local_breaker()
        _shared[key] = GatewayBreaker(storage)
    return _shared[key]


def breaker_reset() -> None:
    """Close the breaker and forget its failures (staff, after fixing the cause; tests)."""
    breaker().close()


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call the gateway through the breaker; DependencyUnavailable while it is open."""
    current = breaker()
    try:
        return current.call(fn, *args, **kwargs)
    except pybreaker.CircuitBreakerError as exc:
        raise DependencyUnavailable(
            f"the card gateway is failing and its circuit breaker is open: {exc}",
            retry_in=max(current.seconds_until_trial(), 0.1),
        ) from exc

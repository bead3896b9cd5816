"""The card gateway's circuit breaker, as the payments workers share it (through Redis).

Without a Redis for the breaker each worker process keeps a breaker of its
own, which no other process can see: then this says so instead of showing
this web process's own, which never called the gateway.
"""

from __future__ import annotations

import pybreaker
from django.conf import settings

from payments.breaker import breaker


def gateway_breaker() -> dict:
    current = breaker()
    is_shared = isinstance(current.storage, pybreaker.CircuitRedisStorage)
    if not is_shared:
        reason = (
            "each payments worker keeps its own breaker (no PAYMENT_GATEWAY_BREAKER_REDIS_URL)"
            if not settings.PAYMENT_GATEWAY_BREAKER_REDIS_URL
            else "the breaker's Redis could not be reached"
        )
        return {"is_shared": False, "state": None, "reason": reason}
    state = current.current_state
    return {
        "is_shared": True,
        "state": state,
        "failures": current.fail_counter,
        "fail_max": current.fail_max,
        "reset_seconds": current.reset_timeout,
        "seconds_until_trial": (
            round(current.seconds_until_trial(), 1) if state == pybreaker.STATE_OPEN else None
        ),
        "reason": None,
    }

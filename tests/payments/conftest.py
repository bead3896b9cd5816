"""Each payments test gets a closed circuit breaker of its own: no Redis, no state left over."""

import pybreaker
import pytest

from payments import breaker as payments_breaker


@pytest.fixture(autouse=True)
def gateway_breaker(monkeypatch) -> payments_breaker.GatewayBreaker:
    fresh = payments_breaker.GatewayBreaker(pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED))
    monkeypatch.setattr(payments_breaker, "breaker", lambda: fresh)
    return fresh

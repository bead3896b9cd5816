"""Waiting for what the workers do: a condition to hold, their queues to go quiet."""

import time
from collections.abc import Callable

import pytest

from tests.support.broker import queue_depths


def wait_for(predicate: Callable[[], object], *, timeout: float = 30, what: str = "condition"):
    """Poll until predicate() is truthy and return its value; fail after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def wait_until_quiet(names: list[str], timeout: float = 60, vhost: str | None = None) -> None:
    """Wait until the workers have nothing left to do on these queues (of the tests' vhost).

    A test's database is flushed when it ends; a worker still writing then
    would deadlock with the flush or leak rows into the next test.
    """
    deadline = time.monotonic() + timeout
    quiet_checks = 0
    while quiet_checks < 2:
        depths = queue_depths(names, vhost)
        quiet_checks = quiet_checks + 1 if not any(depths.values()) else 0
        if time.monotonic() > deadline:
            pytest.fail(f"the workers did not finish their work: {depths}")
        time.sleep(0.2)

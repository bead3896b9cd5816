"""A stand-in for the broker's queue counts, for tests of the figures that come from the database.

tests/live/test_broker.py asks the real broker.
"""

from __future__ import annotations

from collections.abc import Callable

from live.figures.broker import BrokerReading, QueueCount


def every_queue_holding(depth: int, consumers: int) -> Callable[[list[str]], BrokerReading]:
    return lambda names: BrokerReading(True, None, {n: QueueCount(depth, consumers) for n in names})


class StubProbe:
    """Answers as ``reading_of`` says (every queue 3 ready, 1 consumer unless told)."""

    def __init__(self, reading_of: Callable[[list[str]], BrokerReading] | None = None) -> None:
        self.reading_of = reading_of or every_queue_holding(3, 1)

    def read(self, names: list[str]) -> BrokerReading:
        return self.reading_of(names)

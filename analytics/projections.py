"""The processors, by name: what ``stream_processor`` runs and ``replay_events`` rebuilds."""

from __future__ import annotations

from .aggregates import Aggregates
from .fraud import FraudScreen
from .processing import Processor

PROCESSORS: dict[str, type[Processor]] = {p.name: p for p in (Aggregates, FraudScreen)}


class UnknownProjection(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"there is no projection named {name!r}; the projections are: {', '.join(PROCESSORS)}"
        )


def processor_named(name: str) -> type[Processor]:
    try:
        return PROCESSORS[name]
    except KeyError:
        raise UnknownProjection(name) from None

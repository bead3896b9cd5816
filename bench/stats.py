"""Small statistics the report needs."""

from __future__ import annotations

import statistics


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """The pct-th percentile (nearest rank) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None

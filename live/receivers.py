"""The live app's receivers of the backbone's signals (connected in LiveConfig.ready)."""

from __future__ import annotations

from .retries import retry_count


def count_retry(sender, *, queue: str | None = None, **kwargs) -> None:
    """A retry was published: count it for its queue (in Redis, when there is one)."""
    if queue:
        retry_count(queue=queue)

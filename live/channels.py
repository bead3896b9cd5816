"""The pub/sub channels: one per order, one for operations, named per site.

A channel's name carries the database's name, as the gateway breaker's keys
and the event log's stream do, so that sites (and test runs) sharing a Redis
never hear each other. A message is JSON: ``{"kind": "step", "step": …}`` on
an order's channel and on ``ops``, ``{"kind": "figures", "figures": …}`` on
``ops``.
"""

from __future__ import annotations

import json
from uuid import UUID

from django.db import connection

ORDER_PREFIX = "order:"


def prefix() -> str:
    return f"eventshop:{connection.settings_dict['NAME']}:live:"


def order_channel(order_id: UUID | str) -> str:
    return f"{prefix()}{ORDER_PREFIX}{order_id}"


def ops_channel() -> str:
    return f"{prefix()}ops"


def staff_watching_key() -> str:
    """Set by a streaming server while staff watch the dashboard: figures are worth making."""
    return f"{prefix()}ops:watched"


def publisher_alive_key() -> str:
    """Refreshed by the publisher while it runs: without it, the push has gone quiet."""
    return f"{prefix()}publisher:alive"


def message(kind: str, body: dict) -> str:
    return json.dumps({"kind": kind, kind: body}, separators=(",", ":"), default=str)

"""The Server-Sent Event streams: what an order's stream, and the staff dashboard's, say.

An order's stream starts by listening, then reads the order's steps from the
database and sends them all (``timeline``), then each step as it is pushed
(``step``, its id the message id). A step the read and the push both carry
is sent once. On every reconnection (the browser's own, after a dropped
connection) the whole timeline is sent again, so nothing published while the
page was away is missed, and the page, which keys steps by message id,
shows none twice.

The database is read in the event loop's shared thread pool
(``thread_sensitive=False``), never in a thread of the stream's own: an
open stream holds a coroutine and a queue, and no thread or database
connection (``live.asgi`` says why Django's request handling is not used).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections

from orders.models import Order
from orders.selectors import order_steps

from . import channels
from .hub import RESYNC, UNAVAILABLE, Unavailable, hub
from .tokens import staff_ticket_user

# Browsers reconnect this many milliseconds after a dropped stream.
RETRY_MS = 1000
STAFF_STREAM_PATH = "/live/staff/stream"


def order_stream_path(order_id: UUID | str) -> str:
    return f"/live/orders/{order_id}/stream"


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str


async def in_pool(function: Callable[..., Any], /, **kwargs: Any) -> Any:
    """``function(**kwargs)`` on a pooled thread's database connection, checked first."""

    def run():
        close_old_connections()  # drop a connection that broke or outlived CONN_MAX_AGE
        return function(**kwargs)

    return await sync_to_async(run, thread_sensitive=False)()


def sse(event: str, data: object, *, id: str | None = None) -> str:
    head = f"id: {id}\n" if id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _hub_refusal() -> Refusal | None:
    if not settings.REDIS_URL:
        return Refusal(503, "No REDIS_URL is set: nothing is pushed, poll instead.")
    try:
        await hub(settings.REDIS_URL).ready()
    except Unavailable as exc:
        return Refusal(503, f"Live updates are unavailable ({exc}): poll instead.")
    return None


async def _next(queue: asyncio.Queue) -> object | None:
    """What the hub sent next, or None after LIVE_KEEPALIVE seconds of quiet."""
    try:
        return await asyncio.wait_for(queue.get(), settings.LIVE_KEEPALIVE)
    except TimeoutError:
        return None


def _order_exists(*, order_id: UUID) -> bool:
    return Order.objects.filter(pk=order_id).exists()


async def order_stream(order_id: UUID) -> Refusal | AsyncGenerator[str, None]:
    if not await in_pool(_order_exists, order_id=order_id):
        return Refusal(404, "No such order")
    return await _hub_refusal() or _order_events(order_id)


async def _order_events(order_id: UUID) -> AsyncGenerator[str, None]:
    # Listening first, reading second: a step committed after the read is pushed.
    async with hub(settings.REDIS_URL).listen(channels.order_channel(order_id)) as queue:
        yield f"retry: {RETRY_MS}\n\n"
        steps = await in_pool(order_steps, order_id=order_id)
        sent = {step["message_id"] for step in steps}
        yield sse("timeline", {"steps": steps})
        while True:
            item = await _next(queue)
            if item is None:
                yield ": keep-alive\n\n"
            elif item == UNAVAILABLE:
                yield sse("unavailable", {"detail": "Live updates paused: poll the order."})
                return
            elif item == RESYNC:
                for step in await in_pool(order_steps, order_id=order_id):
                    if step["message_id"] not in sent:
                        sent.add(step["message_id"])
                        yield sse("step", step, id=step["message_id"])
            elif isinstance(item, dict) and item.get("kind") == "step":
                step = item["step"]
                if step.get("order_id") == str(order_id) and step["message_id"] not in sent:
                    sent.add(step["message_id"])
                    yield sse("step", step, id=step["message_id"])


def _is_active_staff(*, user_id: int | str) -> bool:
    return get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).exists()


async def staff_stream(ticket: str) -> Refusal | AsyncGenerator[str, None]:
    user_id = staff_ticket_user(ticket)
    if user_id is None or not await in_pool(_is_active_staff, user_id=user_id):
        return Refusal(403, "This stream needs a staff ticket: open /staff/live/ as staff.")
    return await _hub_refusal() or _staff_events()


async def _staff_events() -> AsyncGenerator[str, None]:
    async with hub(settings.REDIS_URL).listen(channels.ops_channel()) as queue:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            item = await _next(queue)
            if item is None:
                yield ": keep-alive\n\n"
            elif item == UNAVAILABLE:
                yield sse("unavailable", {"detail": "Live updates paused."})
                return
            elif isinstance(item, dict) and item.get("kind") in ("step", "figures"):
                yield sse(item["kind"], item[item["kind"]])


__all__ = ["STAFF_STREAM_PATH", "Refusal", "order_stream", "order_stream_path", "staff_stream"]

"""The Server-Sent Event streams: an order's steps, and the staff dashboard's figures and feed.

They are async views, served by the ASGI server (``config.asgi`` under
uvicorn) beside the WSGI one: an open stream costs a coroutine there, and
an idle thread Django's ASGI handler keeps for each request while it lasts
(about 70 KB of memory in all; ``python -m bench --phases live``), where it
would hold a whole WSGI worker. Under WSGI they answer 503, and the pages
poll.

An order's stream starts by listening, then reads the order's steps from the
database and sends them all (``timeline``), then each step as it is pushed
(``step``, its id the message id). A step the read and the push both carry
is sent once. On every reconnection (the browser's own, after a dropped
connection) the whole timeline is sent again, so nothing published while the
page was away is missed, and the page, which keys steps by message id,
shows none twice.

Their database reads run on the server's shared thread pool (``_read``),
never in the thread Django's ASGI handler gives each request: that thread
lives as long as its stream, and so would a connection opened in it.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from orders.models import Order
from orders.selectors import order_steps

from . import channels
from .hub import RESYNC, UNAVAILABLE, Unavailable, hub
from .tokens import staff_ticket_user

# Browsers reconnect this many milliseconds after a dropped stream.
RETRY_MS = 1000


def _read(query: Callable) -> Callable:
    """``query`` as a coroutine run on the event loop's shared thread pool, between the
    connection checks Django makes around a request.

    Django's ASGI handler runs a request's thread-sensitive calls (the async
    ORM's, ``sync_to_async``'s default) in a thread of the request's own,
    which lives until the request ends: for a stream, as long as its page is
    open. A connection opened there would be held for as long, one per
    open page (PostgreSQL allows 100 by default), and left open after it,
    younger than CONN_MAX_AGE when the request ends. On the shared pool a
    few connections serve every stream.
    """

    @functools.wraps(query)
    def run(*args, **kwargs):
        close_old_connections()
        try:
            return query(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


def _order_exists(order_id: UUID) -> bool:
    return Order.objects.filter(pk=order_id).exists()


def sse(event: str, data: object, *, id: str | None = None) -> str:
    head = f"id: {id}\n" if id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _refuse(status: int, reason: str) -> HttpResponse:
    response = JsonResponse({"detail": reason}, status=status)
    return _cross_origin(response)


def _cross_origin(response: HttpResponse) -> HttpResponse:
    # The stream may live on another origin than the page. Access is by
    # capability (the order's unguessable id, or a signed staff ticket), never
    # by cookie, so any origin may read what the URL opens.
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _streaming(events: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return _cross_origin(response)


async def _next(queue: asyncio.Queue) -> object | None:
    """What the hub sent next, or None after LIVE_KEEPALIVE seconds of quiet."""
    try:
        return await asyncio.wait_for(queue.get(), settings.LIVE_KEEPALIVE)
    except TimeoutError:
        return None


async def _hub_or_refusal() -> HttpResponse | None:
    if not settings.REDIS_URL:
        return _refuse(503, "No REDIS_URL is set: nothing is pushed, poll instead.")
    try:
        await hub(settings.REDIS_URL).ready()
    except Unavailable as exc:
        return _refuse(503, f"Live updates are unavailable ({exc}): poll instead.")
    return None


@require_GET
async def order_stream(request: HttpRequest, order_id: UUID) -> HttpResponse:
    if not isinstance(request, ASGIRequest):
        return _refuse(503, "Streams are served by the ASGI server (LIVE_STREAM_URL).")
    if not await _read(_order_exists)(order_id):
        return _refuse(404, "No such order")
    return await _hub_or_refusal() or _streaming(_order_events(order_id))


async def _order_events(order_id: UUID) -> AsyncIterator[str]:
    # Listening first, reading second: a step committed after the read is pushed.
    with hub(settings.REDIS_URL).listen(channels.order_channel(order_id)) as queue:
        yield f"retry: {RETRY_MS}\n\n"
        steps = await _read(order_steps)(order_id=order_id)
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
                for step in await _read(order_steps)(order_id=order_id):
                    if step["message_id"] not in sent:
                        sent.add(step["message_id"])
                        yield sse("step", step, id=step["message_id"])
            elif isinstance(item, dict) and item.get("kind") == "step":
                step = item["step"]
                if step.get("order_id") == str(order_id) and step["message_id"] not in sent:
                    sent.add(step["message_id"])
                    yield sse("step", step, id=step["message_id"])


def _is_active_staff(user_id: object) -> bool:
    return get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).exists()


@require_GET
async def staff_stream(request: HttpRequest) -> HttpResponse:
    if not isinstance(request, ASGIRequest):
        return _refuse(503, "Streams are served by the ASGI server (LIVE_STREAM_URL).")
    user_id = staff_ticket_user(request.GET.get("ticket", ""))
    if user_id is None or not await _read(_is_active_staff)(user_id):
        return _refuse(403, "This stream needs a staff ticket: open /staff/live/ as staff.")
    return await _hub_or_refusal() or _streaming(_staff_events())


async def _staff_events() -> AsyncIterator[str]:
    with hub(settings.REDIS_URL).listen(channels.ops_channel()) as queue:
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

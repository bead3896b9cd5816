"""The streams over HTTP: a small ASGI application for /live/, without Django's request handling.

Why not async Django views: Django's ASGI handler runs each request in a
thread-sensitive context, and its middleware (sessions, auth, CSRF, every
``MiddlewareMixin``) through ``sync_to_async`` in a thread of that request's
own, kept until the response ends; the ORM's async API uses the same
thread, with its own database connection. For a response that lasts as
long as the page is open, that is one OS thread and one PostgreSQL
connection per open page: 50 streams held 50 threads and 50 connections
(measured). The streams need none of that middleware (no cookie, no form),
so this module speaks ASGI itself: it routes two paths, answers a refusal
as JSON, and otherwise sends the stream's events until the client goes
(``http.disconnect``) or the stream ends. A framework (Starlette with
sse-starlette) would save about as many lines as it would cost to wire in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator
from urllib.parse import parse_qs
from uuid import UUID

from . import streams

ORDER_PATH = re.compile(r"/live/orders/(?P<order_id>[^/]+)/stream")

HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
    # The stream may live on another origin than the page. Access is by
    # capability (the order's unguessable id, or a signed staff ticket), never
    # by cookie, so any origin may read what the URL opens.
    (b"access-control-allow-origin", b"*"),
    (b"x-content-type-options", b"nosniff"),
]


async def application(scope, receive, send) -> None:
    """The ASGI app of /live/ (``config.asgi`` sends it those paths)."""
    if scope["method"] not in ("GET", "HEAD"):
        await _answer(send, streams.Refusal(405, "Streams are read with GET"), allow=True)
        return
    outcome = await _route(scope)
    if isinstance(outcome, streams.Refusal):
        await _answer(send, outcome)
        return
    await _stream(receive, send, outcome, head_only=scope["method"] == "HEAD")


async def _route(scope) -> streams.Refusal | AsyncGenerator[str, None]:
    path = scope["path"]
    if path == streams.STAFF_STREAM_PATH:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return await streams.staff_stream(query.get("ticket", [""])[0])
    if match := ORDER_PATH.fullmatch(path):
        try:
            order_id = UUID(match["order_id"])
        except ValueError:
            return streams.Refusal(404, "No such order: an order's id is a UUID")
        return await streams.order_stream(order_id)
    return streams.Refusal(404, "Not found: this server streams /live/ only")


async def _answer(send, refusal: streams.Refusal, *, allow: bool = False) -> None:
    body = json.dumps({"detail": refusal.detail}).encode()
    headers = [*HEADERS, (b"content-type", b"application/json")]
    if allow:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(receive, send, events: AsyncGenerator[str, None], *, head_only: bool) -> None:
    headers = [*HEADERS, (b"content-type", b"text/event-stream; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if head_only:
        await events.aclose()
        await send({"type": "http.response.body", "body": b""})
        return

    async def pump() -> None:
        async for chunk in events:
            await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def client_gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(client_gone())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await events.aclose()  # leaves the hub: the stream's queue goes with it

"""Order pages as the live phase holds them open: pushed (an SSE stream) or polled (the API).

A page records each step the first time it sees it, and when: on opening
(the stream's ``timeline``, or the first poll, which stands for the page's
server-rendered snapshot) or later (a pushed ``step``, or a later poll).
Only the later ones measure the push or the polling: a step already
there on opening was seen when the page happened to open. A step a stream
sends twice is a duplicate (the page would key it away, the stream must
not send it); a poll shows every step each time, so polling has none.

``Pages`` keeps a number of pages open at any time: each new order gets
one, taking the place of the oldest page whose order is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .sse import HttpError, SseEvent, SseStream, get_json

POLL_S = 1.0  # orders/static/orders/order_page.js: POLL_MS
CLOSED_STATUSES = {"completed", "cancelled"}
# As the load generators send it: production settings redirect plain http.
FORWARDED = {"X-Forwarded-Proto": "https"}


@dataclass(frozen=True)
class Seen:
    occurred_at: float
    received_at: float
    on_opening: bool


@dataclass
class Page:
    order_id: str
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    seen: dict[str, Seen] = field(default_factory=dict)
    duplicates: int = 0
    order_closed: bool = False
    error: str = ""
    # A stream sends each step once; every poll shows them all again.
    counts_duplicates = True

    async def hold(self, host: str, port: int) -> None:
        """Open the page and follow its order until ``close()``."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def record(self, step: dict, received_at: float, *, on_opening: bool) -> None:
        message_id = step["message_id"]
        if message_id in self.seen:
            self.duplicates += self.counts_duplicates
            return
        occurred_at = timestamp(step["occurred_at"])
        self.seen[message_id] = Seen(occurred_at, received_at, on_opening)
        if step.get("status") in CLOSED_STATUSES:
            self.order_closed = True

    def latencies_ms(self) -> list[float]:
        """Committed (at most) → seen, of each step first seen after the page opened."""
        return [
            1000 * (s.received_at - s.occurred_at) for s in self.seen.values() if not s.on_opening
        ]


def timestamp(iso: str) -> float:
    """An ISO 8601 time (an event's ``occurred_at``) as seconds since the epoch."""
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


class PushedPage(Page):
    """A page on the order's stream: the timeline on opening, then each pushed step."""

    async def hold(self, host: str, port: int) -> None:
        def on_event(event: SseEvent) -> None:
            if event.name == "timeline":
                for step in event.data["steps"]:
                    self.record(step, event.received_at, on_opening=True)
            elif event.name == "step":
                self.record(event.data, event.received_at, on_opening=False)
            elif event.name == "unavailable":
                self.error = self.error or f"unavailable: {event.data}"

        self.stream = SseStream(host, port, f"/live/orders/{self.order_id}/stream", on_event)
        try:
            status = await self.stream.open()
            if status != 200:
                self.error = f"stream answered {status}"
                return
            await self.stream.run()
            if self.stream.error:
                self.error = self.error or self.stream.error
        except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
            self.error = self.error or f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.closed_at = self.closed_at or time.time()
        with contextlib.suppress(AttributeError):
            self.stream.close()


class PolledPage(Page):
    """A page polling ``GET /api/orders/<id>/`` as the order page does: 1 s after each answer."""

    counts_duplicates = False

    async def hold(self, host: str, port: int) -> None:
        path = f"/api/orders/{self.order_id}/"
        first = True
        self.polls = 0
        while self.closed_at is None:
            try:
                status, order, received_at = await get_json(host, port, path, FORWARDED)
            except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
                self.error = self.error or f"{type(exc).__name__}: {exc}"
                status, order = None, None
            self.polls += 1
            if status == 200 and self.closed_at is None:
                for entry in order["timeline"]:
                    if entry.get("kind") == "event":
                        self.record(entry, received_at, on_opening=first)
                first = False
            elif status is not None and status != 200:
                self.error = self.error or f"poll answered {status}"
            await asyncio.sleep(POLL_S)

    def close(self) -> None:
        self.closed_at = self.closed_at or time.time()


class Pages:
    """``size`` pages open at any time, each new order's taking the oldest closed order's place."""

    def __init__(self, make: Callable[[str], Page], size: int, host: str, port: int):
        self.make, self.size, self.host, self.port = make, size, host, port
        self.open_pages: list[Page] = []
        self.all_pages: list[Page] = []
        self.tasks: list[asyncio.Task] = []
        self.most_open = 0

    def open(self, order_id: str) -> Page:
        if len(self.open_pages) >= self.size:
            oldest_closed = next((p for p in self.open_pages if p.order_closed), None)
            if oldest_closed is not None:
                self.open_pages.remove(oldest_closed)
                oldest_closed.close()
        page = self.make(order_id)
        self.open_pages.append(page)
        self.all_pages.append(page)
        self.most_open = max(self.most_open, len(self.open_pages))
        self.tasks.append(asyncio.get_running_loop().create_task(page.hold(self.host, self.port)))
        return page

    async def close_all(self) -> None:
        for page in self.open_pages:
            page.close()
        self.open_pages = []
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 10)
        for task in self.tasks:
            task.cancel()

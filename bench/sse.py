"""An asyncio HTTP/1.1 client for the live phase: Server-Sent Event streams, and one-off GETs.

Plain asyncio streams, so that one process holds a thousand streams open
without a thread each. An event's ``received_at`` is the wall clock
(``time.time()``) when the chunk that completed it was read, comparable
with an event's ``occurred_at`` taken on the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SseEvent:
    name: str
    data: Any  # the JSON the event's data lines hold
    id: str | None
    received_at: float  # time.time()


class SseParser:
    """Events from a stream's lines as they come: ``feed`` each one; a blank line ends an event."""

    def __init__(self) -> None:
        self.comments = 0
        self._reset()

    def _reset(self) -> None:
        self.name = "message"
        self.data: list[str] = []
        self.id: str | None = None

    def feed(self, line: str, received_at: float) -> SseEvent | None:
        """The event this line completes, if it does (its data is JSON)."""
        if not line:
            event = None
            if self.data:
                event = SseEvent(self.name, json.loads("\n".join(self.data)), self.id, received_at)
            self._reset()
            return event
        if line.startswith(":"):
            self.comments += 1  # a keep-alive
        elif line.startswith("event:"):
            self.name = line[6:].strip()
        elif line.startswith("data:"):
            self.data.append(line[5:].strip())
        elif line.startswith("id:"):
            self.id = line[3:].strip()
        return None


class HttpError(Exception):
    """The server answered something this client cannot read."""


async def _request(
    host: str, port: int, path: str, headers: dict[str, str]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    reader, writer = await asyncio.open_connection(host, port)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise HttpError(f"not an HTTP response: {status_line!r}") from None
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            found[name.strip().lower()] = value.strip()
    return reader, writer, status, found


async def _body_chunks(reader: asyncio.StreamReader, headers: dict[str, str]):
    """The body as it arrives: de-chunked, up to its length, or up to the end of the connection."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            chunk = await reader.readexactly(size)
            await reader.readexactly(2)
            yield chunk
    elif "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
    else:
        while chunk := await reader.read(65536):
            yield chunk


async def get_json(
    host: str, port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, float]:
    """One GET on a connection of its own: (status, the JSON body, when it was read)."""
    reader, writer, status, found = await _request(
        host, port, path, {"Accept": "application/json", "Connection": "close", **(headers or {})}
    )
    try:
        body = b"".join([chunk async for chunk in _body_chunks(reader, found)])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    received_at = time.time()
    try:
        return status, json.loads(body) if body else None, received_at
    except ValueError:
        raise HttpError(f"{status}: not JSON: {body[:200]!r}") from None


class SseStream:
    """One stream: ``open()`` reads the response's head, ``run()`` each event until it ends.

    ``on_event`` is called with each event as it is parsed; keep-alive
    comments are counted, not passed on.
    """

    def __init__(self, host: str, port: int, path: str, on_event: Callable[[SseEvent], None]):
        self.host, self.port, self.path = host, port, path
        self.on_event = on_event
        self.status: int | None = None
        self.keepalives = 0
        self.events = 0
        self.ended = False
        self.error = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._headers: dict[str, str] = {}
        # The task running run(), when a caller keeps it here (asyncio holds tasks weakly).
        self.task: asyncio.Task | None = None

    async def open(self) -> int:
        self._reader, self._writer, self.status, self._headers = await _request(
            self.host, self.port, self.path, {"Accept": "text/event-stream"}
        )
        return self.status

    async def run(self) -> None:
        """Parse events until the server ends the stream or ``close()``."""
        if self._reader is None:
            await self.open()
        assert self._reader is not None  # open() read the response's head
        buffer = b""
        parser = SseParser()
        try:
            async for chunk in _body_chunks(self._reader, self._headers):
                received_at = time.time()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    event = parser.feed(raw.rstrip(b"\r").decode(), received_at)
                    self.keepalives = parser.comments
                    if event is not None:
                        self.events += 1
                        self.on_event(event)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if not self.ended:
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = True
            self.close()

    def close(self) -> None:
        self.ended = True
        if self._writer is not None:
            self._writer.close()

"""A Server-Sent Events client for the tests: reads a stream in a thread, keeps every event."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from urllib.parse import urlsplit

from bench.sse import SseEvent, SseParser


class SseClient:
    """GET ``url`` and parse what comes back, until the server ends it or ``close``."""

    def __init__(self, url: str, *, timeout: float = 30) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                                headers={"Accept": "text/event-stream"})  # fmt: skip
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = {name.lower(): value for name, value in self.response.getheaders()}
        self.events: list[SseEvent] = []
        self.ended = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.body = self.response.read().decode()
            self.ended.set()

    def _read(self) -> None:
        parser = SseParser()
        try:
            for raw in self.response:
                event = parser.feed(raw.decode().rstrip("\r\n"), time.time())
                if event is not None:
                    self.events.append(event)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed under it
        finally:
            self.ended.set()

    def named(self, name: str) -> list[SseEvent]:
        return [event for event in self.events if event.name == name]

    def close(self) -> None:
        # Shut the socket first: that wakes the reading thread at once, whereas
        # close() alone waits for the buffered reader it holds, until the
        # server's next keep-alive comes.
        sock = self.connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()

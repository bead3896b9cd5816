"""A stand-in for the staff stream of the ASGI server: Server-Sent Events a test pushes.

It answers ``GET /live/staff/stream?ticket=…`` as the real one does (the
events ``figures`` and ``step``), records the tickets it was given, and can be
stopped and started again on the same port, as a streaming server that goes
away and comes back.
"""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.redis import free_port


class StaffStreamStub:
    def __init__(self) -> None:
        self.port = free_port()
        self.tickets: list[str] = []
        self._listeners: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, event: str, body: dict) -> None:
        """Send one event to every open stream."""
        with self._lock:
            for listener in self._listeners:
                listener.put(f"event: {event}\ndata: {json.dumps(body)}\n\n")

    @property
    def listening(self) -> int:
        with self._lock:
            return len(self._listeners)

    def start(self) -> StaffStreamStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/live/staff/stream":
                    self.send_error(404)
                    return
                stub.tickets.extend(parse_qs(parts.query).get("ticket", []))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                # The page is on another origin (the live server's).
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(b": connected\n\n")
                self.wfile.flush()
                listener: queue.Queue = queue.Queue()
                with stub._lock:
                    stub._listeners.append(listener)
                try:
                    while True:
                        message = listener.get()
                        if message is None:
                            return
                        self.wfile.write(message.encode())
                        self.wfile.flush()
                except OSError:
                    return
                finally:
                    with stub._lock:
                        stub._listeners.remove(listener)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close every open stream and stop answering (the port refuses connections)."""
        if self._server is None:
            return
        with self._lock:
            for listener in self._listeners:
                listener.put(None)
        self._server.shutdown()
        self._server.server_close()
        self._server = None

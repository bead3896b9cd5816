"""Flower itself, a client of the workers' events we did not write: `celery -A config flower`."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tests.support.processes import LoggedProcess

USER = "ops"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FlowerProcess(LoggedProcess):
    """Flower on a port of its own on 127.0.0.1, its API behind HTTP basic auth, as README says."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        password = secrets.token_urlsafe(12)
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        self.authorization = f"Basic {token}"
        super().__init__("flower", [
            sys.executable, "-m", "celery", "-A", "config", "flower",
            f"--port={self.port}", "--address=127.0.0.1", f"--basic_auth={USER}:{password}",
        ], env)  # fmt: skip

    def get(self, path: str, **params: str) -> Any:
        """GET one of Flower's API paths; its JSON answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}{query}",
            headers={"Authorization": self.authorization},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our own URL)
            return json.loads(response.read())

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get("/api/workers", status="true")
                return
            except (OSError, urllib.error.URLError):
                if not self.is_running or time.monotonic() > deadline:
                    raise RuntimeError(f"Flower did not start:\n{self.log()}") from None
                time.sleep(0.2)

    def workers_online(self) -> dict[str, bool]:
        """Each worker Flower knows of, and whether its heartbeats say it is online."""
        return self.get("/api/workers", status="true")

    def tasks(self) -> dict[str, dict]:
        """The tasks Flower saw through their events, by task id."""
        return self.get("/api/tasks")

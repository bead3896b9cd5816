"""The web as production starts it: gunicorn with gunicorn.conf.py, on a free port of its own."""

from __future__ import annotations

import socket
import sys
import time

from tests.support.processes import LoggedProcess
from tests.support.redis import free_port


class WebServer(LoggedProcess):
    """``gunicorn config.wsgi`` with the given environment (its broker URL, its database)."""

    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        super().__init__("gunicorn", [sys.executable, "-m", "gunicorn", "config.wsgi"], {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "COLLECTSTATIC": "0",
        })  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def wait_listening(self, timeout: float = 60) -> WebServer:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(self.address) == 0:
                    return self
            if not self.is_running or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not listen:\n{self.log()}")
            time.sleep(0.2)

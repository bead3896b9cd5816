"""The real-time push's processes, as ``make run`` starts them: live_push and one uvicorn.

Both are told REDIS_URL (and nothing else is: the app workers and gunicorn
run as in the other phases). The publisher starts at the end of the event
log: a position saved by an earlier run would replay its steps.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from pathlib import Path

from . import procs
from .environment import child_env

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def redis_problem(url: str) -> str:
    """Why the push cannot run on ``url`` ("" when Redis answers)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"Redis at {url} does not answer ({exc})"
    return ""


def raise_open_files_limit() -> int:
    """The soft limit on open files raised to the hard one (children inherit it); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class PushServers:
    """``manage.py live_push`` and ``uvicorn config.asgi:application`` (one process)."""

    def __init__(self, name: str, url: str, log_dir: Path, keepalive: float | None = None):
        self.name, self.url, self.log_dir = name, url, log_dir
        self.env = child_env(REDIS_URL=url)
        if keepalive is not None:
            self.env["LIVE_KEEPALIVE"] = str(keepalive)
        self.port = procs.free_port()
        self.publisher: procs.Managed | None = None
        self.server: procs.Managed | None = None

    def start(self) -> PushServers:
        import redis

        from live import channels

        client = redis.Redis.from_url(self.url)
        position = f"{channels.prefix()}publisher:position"
        client.delete(position, channels.publisher_alive_key())
        # As the Procfile and the README run it: at a lower priority than the shop.
        argv = ["nice", "-n", "10", procs.python(), "manage.py", "live_push"]
        self.publisher = procs.Managed(f"{self.name}-live_push", argv, self.env, self.log_dir)
        argv = [
            procs.python(), "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
            "--port", str(self.port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        # Started together: the server's hub tries again each second until the publisher is alive.
        self.server = procs.Managed(f"{self.name}-uvicorn", argv, self.env, self.log_dir)
        deadline = time.monotonic() + 60
        while not client.exists(channels.publisher_alive_key()):
            if self.publisher.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"live_push did not start:\n{self.publisher.log()}")
            time.sleep(0.1)
        client.close()
        self.server.wait_for_port(self.port)
        return self

    def processes(self):
        return [p for m in (self.publisher, self.server) if m is not None for p in m.processes()]

    def stop(self) -> None:
        for managed in (self.server, self.publisher):
            if managed is not None:
                managed.stop(timeout=10)

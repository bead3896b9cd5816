"""The real-time processes as ``make run`` starts them: the streaming server and the publisher.

``LiveStack`` runs ``uvicorn config.asgi:application`` on a free port and
``manage.py live_push``, both with a test's worker environment and the Redis
it names (the machine's, or a redis-server of the test's own that it may
stop). It returns once the publisher is alive and the server answers.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

import redis

from tests.support.processes import LoggedProcess
from tests.support.redis import free_port


class LiveStack:
    def __init__(self, env: dict[str, str], redis_url: str) -> None:
        self.redis_url = redis_url
        self.port = free_port()
        self.env = {**env, "REDIS_URL": redis_url, "LIVE_KEEPALIVE": "2"}
        self.processes: list[LoggedProcess] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveStack:
        from live import channels

        client = redis.Redis.from_url(self.redis_url)
        # A saved position from an earlier run would replay its steps: start at the end.
        client.delete(f"{channels.prefix()}publisher:position", channels.publisher_alive_key())
        self.publisher = self._run("live_push", [sys.executable, "manage.py", "live_push"])
        self._wait(lambda: client.exists(channels.publisher_alive_key()), "the publisher")
        self.server = self._run("uvicorn", [
            sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
        ])  # fmt: skip
        self._wait(self._answers, "the streaming server")
        return self

    def _run(self, name: str, arguments: list[str]) -> LoggedProcess:
        process = LoggedProcess(name, arguments, self.env)
        self.processes.append(process)
        return process

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/", timeout=1)  # noqa: S310 (http, ours)
        except urllib.error.HTTPError:
            return True  # a 404: it answers
        except OSError:
            return False
        return True

    def _wait(self, ready, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for process in self.processes:
                if process.process.poll() is not None:
                    raise RuntimeError(f"{process.name} exited while waiting for {what}\n"
                                       + self.log())  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start in {timeout} s\n{self.log()}")
            time.sleep(0.1)

    def order_stream(self, order_id) -> str:
        return f"{self.url}/live/orders/{order_id}/stream"

    def log(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log(100)}" for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

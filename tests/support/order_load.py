"""Orders placed through the web's API at a steady pace, every answer and its time kept."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Answer:
    at: float
    status: int  # 0: no answer (refused, timed out)
    order_id: str | None


@dataclass
class OrderLoad:
    """``clients`` threads, each POSTing ``body`` to /api/orders/ every ``interval`` seconds."""

    address: tuple[str, int]
    body: dict
    clients: int = 2
    interval: float = 0.25
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._place, daemon=True) for _ in range(self.clients)
        ]
        self._lock = threading.Lock()

    def __enter__(self) -> OrderLoad:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self.stopped = time.monotonic()

    def _place(self) -> None:
        body = json.dumps(self.body)
        while not self._stop.is_set():
            answer = self._post(body)
            with self._lock:
                self.answers.append(answer)
            self._stop.wait(self.interval)

    def _post(self, body: str) -> Answer:
        connection = http.client.HTTPConnection(*self.address, timeout=60)
        try:
            connection.request("POST", "/api/orders/", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            order_id = json.loads(payload).get("id") if response.status == 202 else None
            return Answer(time.monotonic(), response.status, order_id)
        except (OSError, http.client.HTTPException, ValueError):
            return Answer(time.monotonic(), 0, None)
        finally:
            connection.close()

    @property
    def placed(self) -> list[str]:
        return [a.order_id for a in self.answers if a.order_id]

    @property
    def refused(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 202]

    def longest_pause(self) -> float:
        """The longest time without an order taken, the load's start and end included."""
        taken = [self.started, *sorted(a.at for a in self.answers if a.order_id), self.stopped]
        return max(later - earlier for earlier, later in itertools.pairwise(taken))

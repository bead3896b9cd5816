"""Each queue's depth and consumers as the broker counts them: a passive declare per queue.

One connection is kept open between snapshots (a snapshot every couple of
seconds should not cost a TCP and AMQP handshake each time) and opened again
when it broke. A broker that cannot be reached is not asked again for a few
seconds, so a dashboard never waits on it each time. The file-system broker
of the embedded default counts neither: there, and while the broker is
unreachable, every figure is None with the reason.

``depth`` is the messages ready in the queue; those a worker holds (in
flight) and retries waiting in the queue's retry queues are not in it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from kombu import Connection

from messaging.broker_urls import connect_once_to_each

CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0
RETRY_AFTER_FAILURE = 5.0
FILE_SYSTEM_REASON = "the file-system broker (embedded default) counts no queue depths or consumers"


@dataclass
class QueueCount:
    depth: int | None = None
    consumers: int | None = None
    reason: str | None = None


@dataclass
class BrokerReading:
    """What the broker said about each queue, or why it said nothing."""

    is_available: bool
    reason: str | None = None
    queues: dict[str, QueueCount] = field(default_factory=dict)

    @classmethod
    def unavailable(cls, queues: list[str], reason: str) -> BrokerReading:
        return cls(False, reason, {name: QueueCount(reason=reason) for name in queues})


class QueueProbe:
    """Passive declares on a kept-open connection to the broker (CELERY_BROKER_URL unless given)."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._connected_to = ""
        # py-amqp's channel: kombu's stubs say StdChannel, which has no queue_declare.
        self._channel: Any = None
        self._down_until = 0.0
        self._down_reason = ""

    def read(self, queues: list[str]) -> BrokerReading:
        url = self._url or settings.CELERY_BROKER_URL
        if url.startswith("filesystem://"):
            return BrokerReading.unavailable(queues, FILE_SYSTEM_REASON)
        errors: tuple[type[BaseException], ...] = (OSError, *Connection(url).connection_errors)
        with self._lock:
            if url != self._connected_to:
                self.close()
            elif time.monotonic() < self._down_until:
                return BrokerReading.unavailable(queues, self._down_reason)
            # A kept connection may have been closed by the broker while idle: one more try.
            tries = 2 if self._connection is not None else 1
            for tried in range(1, tries + 1):
                try:
                    return self._read(url, queues)
                except errors as exc:
                    self.close()
                    if tried == tries:
                        self._connected_to = url
                        self._down_until = time.monotonic() + RETRY_AFTER_FAILURE
                        self._down_reason = f"broker unreachable: {type(exc).__name__}: {exc}"
            return BrokerReading.unavailable(queues, self._down_reason)

    def close(self) -> None:
        """Let go of the connection (the next read opens one)."""
        connection, self._connection, self._channel = self._connection, None, None
        self._connected_to = ""
        if connection is not None:
            with contextlib.suppress(OSError, *connection.connection_errors):
                connection.release()

    def _read(self, url: str, queues: list[str]) -> BrokerReading:
        if self._connection is None:
            connection = Connection(
                url,
                connect_timeout=CONNECT_TIMEOUT,
                heartbeat=0,
                transport_options={"read_timeout": SOCKET_TIMEOUT, "write_timeout": SOCKET_TIMEOUT},
            )
            # Once per node: kombu's connect() would try again after 2 s.
            connect_once_to_each(connection, reraise_as_library_errors=False)
            self._connection, self._connected_to = connection, url
        counts = {}
        for name in queues:
            if self._channel is None:
                self._channel = self._connection.channel()
            try:
                _, depth, consumers = self._channel.queue_declare(queue=name, passive=True)
            except self._connection.channel_errors as exc:
                # The broker closes the channel on a queue it does not have.
                self._channel = None
                counts[name] = QueueCount(reason=f"not on the broker: {exc}")
                continue
            counts[name] = QueueCount(depth=depth, consumers=consumers)
        return BrokerReading(True, None, counts)


default_probe = QueueProbe()

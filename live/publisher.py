"""The push's source: every order event in the log, published to Redis pub/sub as a step.

It reads the event log (``messaging.eventlog``), so it sees exactly what was
dispatched, after commit, and sits outside every producer: a slow or absent
Redis delays the push, never an order. Each event with an ``order_id`` goes
to its order's channel, and to ``ops`` while staff watch the dashboard, in
one pipeline per batch read.

Pub/sub keeps nothing, so the publisher makes up for what it can:

- it keeps its position in Redis and, started again within
  ``RESUME_WITHIN`` seconds, goes on from there, so a restart loses no step
  (one published twice is dropped by the stream, which knows message ids);
- while Redis refuses, it holds the batch and tries it again;
- it refreshes an ``alive`` key, which the streaming server reads: with the
  publisher gone, pages are told to poll instead of waiting on a silent push.

A subscriber that was not listening when a step went out (a page
reconnecting, a streaming server whose connection to Redis dropped) reads the
order's timeline from the database instead: see ``live.hub``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Literal

import redis
from django.db import close_old_connections

from messaging.eventlog import EventLog, LogEntry, Start
from orders.steps import step_entry

from . import channels

logger = logging.getLogger(__name__)

# A position saved longer ago than this is stale: what came after it is no
# news to anyone still watching, and the publisher starts at the log's end.
RESUME_WITHIN = 600
# How long the ``alive`` key outlives the last sign of life.
ALIVE_TTL = 10
BATCH = 500
# How long the publisher waits after an entry for the others of a burst: a
# step is pushed at most this much later (well within a page's 250 ms), and a
# burst costs one read, one ack and one Redis round trip instead of one per
# entry (per order placed at 180 a second: 0.25 CPU ms at 20 ms, 0.18 at 50).
GATHER = 0.05
# Steps go to ``ops`` only while staff watch; the publisher looks again this often.
OPS_CHECK = 1.0


def redis_client(url: str) -> redis.Redis:
    # Short timeouts: a Redis that hangs is one that is down, for the push.
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def steps_of(entries: Iterable[LogEntry]) -> list[dict]:
    """The order steps among log entries: events that carry an ``order_id``."""
    steps = []
    for entry in entries:
        envelope = entry.envelope
        if envelope is None or envelope.kind != "event" or "order_id" not in envelope.payload:
            continue
        steps.append(
            step_entry(
                message_type=envelope.type,
                payload=envelope.payload,
                message_id=str(envelope.message_id),
                occurred_at=envelope.occurred_at.isoformat(),
                order_id=str(envelope.payload["order_id"]),
            )
        )
    return steps


class Publisher:
    """Reads ``log`` and publishes its order steps on ``client``, until ``stop`` is set."""

    def __init__(
        self,
        log: EventLog,
        client: redis.Redis,
        *,
        figures: Callable[[], dict] | None = None,
        figures_interval: float = 2.0,
        start: Start | None = None,
    ) -> None:
        """``start``: where to read from; by default after the saved position, or the log's end."""
        self.log, self.client, self.start = log, client, start
        self.figures, self.figures_interval = figures, figures_interval
        self.prefix = channels.prefix()
        self.position_key = f"{self.prefix}publisher:position"
        self.alive_key = channels.publisher_alive_key()
        self.watched_key = channels.staff_watching_key()
        self.ops_watched, self.ops_checked_at = False, 0.0
        self.published = 0

    def run(self, stop: threading.Event) -> None:
        if self.figures is not None:
            threading.Thread(
                target=self._figures_loop, args=(stop, self.figures), daemon=True
            ).start()
        reader = self.log.reader(self.start if self.start is not None else self._start())
        last_alive = 0.0
        try:
            while not stop.is_set():
                entries = self._gathered(reader)
                if entries or time.monotonic() - last_alive > ALIVE_TTL / 3:
                    self._publish_until_done(entries, stop)
                    last_alive = time.monotonic()
        finally:
            reader.close()

    def _gathered(self, reader) -> list[LogEntry]:
        """The next entries: once one is in, what else comes within ``GATHER`` seconds.

        Each read, its ack and each Redis round trip cost more than the entries
        they carry; one entry at a time, the push would take a third of a
        millisecond of CPU per order placed, from the cores that place them.
        """
        entries = reader.read(max_entries=BATCH, timeout=1.0)
        if entries and len(entries) < BATCH and GATHER:
            time.sleep(GATHER)
            entries += reader.read(max_entries=BATCH - len(entries), timeout=0.002)
        return entries

    def _start(self) -> int | Literal["next"]:
        saved = self._saved_position()
        if saved is not None:
            offset, saved_at = saved
            if time.time() - saved_at < RESUME_WITHIN:
                logger.info("Live push: resuming after offset %s of %s", offset, self.log.name)
                return offset + 1
        logger.info("Live push: starting at the end of %s", self.log.name)
        return "next"

    def _saved_position(self) -> tuple[int, float] | None:
        try:
            raw = self.client.get(self.position_key)
        except redis.RedisError as exc:
            logger.warning("Live push: no saved position (Redis: %s); starting at the end", exc)
            return None
        if raw is None:
            return None
        try:
            saved = json.loads(raw)
            return int(saved["offset"]), float(saved["at"])
        except (ValueError, KeyError, TypeError):
            logger.warning("Live push: ignoring an unreadable saved position %r", raw[:100])
            return None

    def _publish_until_done(self, entries: list[LogEntry], stop: threading.Event) -> None:
        """Publish the batch; while Redis refuses, keep it and try again each second."""
        failing_since = None
        while not stop.is_set():
            try:
                self._publish(entries)
            except redis.RedisError as exc:
                if failing_since is None:
                    failing_since = time.monotonic()
                    logger.warning("Live push: Redis refused a batch, holding it: %s", exc)
                stop.wait(1.0)
                continue
            if failing_since is not None:
                logger.info(
                    "Live push: Redis is back after %.0f s", time.monotonic() - failing_since
                )
            return

    def _publish(self, entries: list[LogEntry]) -> None:
        steps = steps_of(entries)
        if steps and time.monotonic() - self.ops_checked_at > OPS_CHECK:
            self._ops_check(self.client.exists(self.watched_key))
        pipe = self.client.pipeline(transaction=False)
        ops = channels.ops_channel()
        for step in steps:
            body = channels.message("step", step)
            pipe.publish(channels.order_channel(step["order_id"]), body)
            if self.ops_watched:
                pipe.publish(ops, body)
        if entries:
            position = {"offset": entries[-1].offset, "at": time.time()}
            pipe.set(self.position_key, json.dumps(position), ex=RESUME_WITHIN)
        pipe.set(self.alive_key, "1", ex=ALIVE_TTL)
        # Whether the next batch's steps go to ops too: only while staff watch.
        pipe.exists(self.watched_key)
        self._ops_check(pipe.execute()[-1])
        self.published += len(steps)

    def _ops_check(self, watched: object) -> None:
        self.ops_watched, self.ops_checked_at = bool(watched), time.monotonic()

    def _figures_loop(self, stop: threading.Event, figures: Callable[[], dict]) -> None:
        """The dashboard's figures, every ``figures_interval`` seconds while staff watch."""
        while not stop.wait(self.figures_interval):
            try:
                if not self.client.exists(self.watched_key):
                    continue
                close_old_connections()
                message = channels.message("figures", figures())
                self.client.publish(channels.ops_channel(), message)
            except redis.RedisError as exc:
                logger.debug("Live push: figures not published: %s", exc)
            except Exception:
                logger.exception("Live push: the dashboard's figures failed")

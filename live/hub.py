"""One Redis pub/sub connection per streaming server, fanned out to the streams it serves.

A connection per open page would be a thousand Redis connections for a
thousand pages; instead the hub holds one, subscribed to the channels its
streams listen to (each order's own, and ``ops`` while staff watch), and
hands each message to those streams through a queue of their own. A channel
nobody listens to any more is unsubscribed within ``CHECK_EVERY`` seconds,
so the server hears only the orders whose pages are open.

What a stream can be told besides a step:

- ``UNAVAILABLE``: Redis, or the publisher behind it, has gone quiet; the
  stream tells its page to poll and ends. The page tries the push again
  later.
- ``RESYNC``: the hub's connection dropped and came back, so a step may have
  gone by unheard; the stream reads its order's timeline again.
  A page that reads too slowly to keep its queue under ``QUEUE_SIZE`` is
  resynchronised the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from . import channels

logger = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
RESYNC = "resync"
QUEUE_SIZE = 256
# How often the hub checks that Redis answers and the publisher is alive,
# marks that staff watch (the publisher sends ops steps and figures only
# then) and unsubscribes the channels nobody listens to.
CHECK_EVERY = 2.0
CONNECT_WAIT = 2.0
_WATCHED_TTL = int(CHECK_EVERY * 3)


class Unavailable(Exception):
    """Redis, or the publisher, is not there: the page should poll."""


class Hub:
    def __init__(self, url: str) -> None:
        self.url = url
        self._listeners: dict[str, set[asyncio.Queue]] = defaultdict(set)
        # The channels subscribed on the current connection, each set once Redis confirmed it.
        self._subscribed: dict[str, asyncio.Event] = {}
        self._client: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._up = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.reason = "not connected yet"

    async def ready(self) -> None:
        """Return once the hub listens; raise Unavailable if it cannot within CONNECT_WAIT."""
        self._ensure_running()
        try:
            await asyncio.wait_for(self._up.wait(), CONNECT_WAIT)
        except TimeoutError:
            raise Unavailable(self.reason) from None

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue]:
        """A queue of what arrives on ``channel`` (parsed JSON), or a marker, while inside.

        It returns once Redis has confirmed the subscription, so that what is
        published from then on reaches the queue (or with UNAVAILABLE in it).
        """
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._listeners[channel].add(queue)
        try:
            if not await self._subscribe(channel):
                queue.put_nowait(UNAVAILABLE)
            yield queue
        finally:
            listeners = self._listeners.get(channel)
            if listeners is not None:
                listeners.discard(queue)
                if not listeners:
                    del self._listeners[channel]  # unsubscribed at the next check

    async def _subscribe(self, channel: str) -> bool:
        if not self._up.is_set() or self._pubsub is None or self._client is None:
            return False  # (the two are set and cleared together)
        confirmed = self._subscribed.get(channel)
        try:
            if confirmed is None:
                confirmed = self._subscribed[channel] = asyncio.Event()
                await self._pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed.wait(), CONNECT_WAIT)
            if channel == channels.ops_channel():
                await self._client.set(channels.staff_watching_key(), "1", ex=_WATCHED_TTL)
        except (RedisError, OSError, TimeoutError):
            return False
        return True

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-hub")

    async def _run(self) -> None:
        dropped = False
        while True:
            # No retries inside redis-py: a reconnection it made by itself
            # would lose what was published meanwhile without the hub knowing.
            client = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=1, socket_timeout=5, retry=Retry(NoBackoff(), 0)
            )
            try:
                await self._serve(client, dropped)
            except (RedisError, OSError) as exc:
                self._down(f"Redis: {exc}")
            except Unavailable as exc:
                self._down(str(exc))
            finally:
                self._pubsub, self._client, self._subscribed = None, None, {}
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            dropped = True
            await asyncio.sleep(1.0)

    async def _serve(self, client: aioredis.Redis, dropped: bool) -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.connect()  # read from even while nothing is subscribed
            await self._check(client)
            self._client, self._pubsub = client, pubsub
            wanted = list(self._listeners)
            self._subscribed = {channel: asyncio.Event() for channel in wanted}
            if wanted:
                await pubsub.subscribe(*wanted)
            self._up.set()
            logger.info("Live hub: listening on %s", self.url)
            if dropped:
                self._tell_all(RESYNC)
            loop = asyncio.get_running_loop()
            next_check = loop.time() + CHECK_EVERY
            while True:
                wait = max(0.0, next_check - loop.time())
                message = await pubsub.get_message(timeout=wait)
                if message is not None:
                    self._on(message)
                if loop.time() >= next_check:
                    await self._check(client)
                    await self._unsubscribe_unheard(pubsub)
                    next_check = loop.time() + CHECK_EVERY
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _check(self, client: aioredis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.exists(channels.publisher_alive_key())
        if self._listeners.get(channels.ops_channel()):
            pipe.set(channels.staff_watching_key(), "1", ex=_WATCHED_TTL)
        alive = (await pipe.execute())[0]
        if not alive:
            raise Unavailable("the live publisher (manage.py live_push) is not running")

    async def _unsubscribe_unheard(self, pubsub) -> None:
        unheard = [channel for channel in self._subscribed if channel not in self._listeners]
        if unheard:
            for channel in unheard:
                del self._subscribed[channel]  # a listener from now on subscribes again
            await pubsub.unsubscribe(*unheard)

    def _on(self, message: dict) -> None:
        kind = message["type"]
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if kind == "subscribe" and channel in self._subscribed:
            self._subscribed[channel].set()
        elif kind == "message":
            self._deliver(channel, message["data"])

    def _deliver(self, channel: str, data: bytes) -> None:
        listeners = self._listeners.get(channel)
        if not listeners:
            return
        try:
            body = json.loads(data)
        except (ValueError, TypeError):
            logger.warning("Live hub: dropping a message that is not JSON on %s", channel)
            return
        for queue in listeners:
            try:
                queue.put_nowait(body)
            except asyncio.QueueFull:
                # A page reading too slowly: what it missed it reads from the timeline.
                _drain(queue)
                queue.put_nowait(RESYNC)

    def _down(self, reason: str) -> None:
        if self._up.is_set() or reason != self.reason:
            logger.warning("Live hub: push unavailable, pages will poll: %s", reason)
        self.reason = reason
        self._up.clear()
        self._tell_all(UNAVAILABLE)

    def _tell_all(self, marker: str) -> None:
        for listeners in self._listeners.values():
            for queue in listeners:
                if queue.full():
                    _drain(queue)  # the marker says more than anything waiting
                queue.put_nowait(marker)


def _drain(queue: asyncio.Queue) -> None:
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            queue.get_nowait()


_hubs: dict[str, Hub] = {}


def hub(url: str) -> Hub:
    """The hub of this process for ``url`` (one per event loop's lifetime: the server's)."""
    if url not in _hubs:
        _hubs[url] = Hub(url)
    return _hubs[url]

"""Many messages to RabbitMQ, then one wait for all their confirms (the relay's path).

A publish with confirms waits one round trip (and RabbitMQ's write to disk)
for each message. The relay sends hundreds at a time: here every copy goes
out on one channel in confirm mode, and the relay waits once until the
broker has confirmed the last of them. A message counts as sent only once
every copy of it is confirmed; on a nack, a timeout or a lost connection,
none of the batch is, and the relay sends it again later (the inbox absorbs
whatever did get through).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from celery import current_app
from django.conf import settings
from kombu import Connection

from .consumers import Handler, handlers_for
from .messages import Envelope, registry


class ConfirmsFailed(Exception):
    """The broker did not confirm every message of the batch."""


class _Confirms:
    """Tracks the broker's acks and nacks on one channel in confirm mode."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.published = 0
        self.acked = 0
        self.nacked = False
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.confirm_select()

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        # RabbitMQ numbers a channel's publishes from 1 and acks them in order.
        self.acked = max(self.acked, delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.nacked = True

    def wait_for_all(self, connection: Connection, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < self.published and not self.nacked:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfirmsFailed(
                    f"{self.published - self.acked} of {self.published} publishes "
                    f"not confirmed within {timeout}s"
                )
            try:
                connection.drain_events(timeout=left)
            except TimeoutError:
                continue
        if self.nacked:
            raise ConfirmsFailed("the broker refused (nacked) a message of the batch")


def subscribers(envelope: Envelope) -> list[Handler]:
    """The handlers this message goes to, after their ``when`` filters."""
    message_class = registry.get(envelope.type, envelope.version)
    handlers = handlers_for(message_class)
    if any(handler.when is not None for handler in handlers):
        message = registry.read(envelope)
        handlers = [handler for handler in handlers if handler.wants(message)]
    return handlers


def supported() -> bool:
    """Only RabbitMQ with publisher confirms has a confirm to wait for."""
    options = current_app.conf.broker_transport_options or {}
    return current_app.conf.broker_url.startswith(("amqp", "pyamqp")) and bool(
        options.get("confirm_publish")
    )


class ConfirmedPublisher:
    """One connection and channel in confirm mode, for batch after batch.

    ``send(envelopes)`` enqueues every envelope to each of its subscribers
    and returns once the broker confirmed them all; it raises ConfirmsFailed,
    or the broker's connection error, if it did not.
    """

    def __enter__(self) -> ConfirmedPublisher:
        app = current_app
        options = {**(app.conf.broker_transport_options or {}), "confirm_publish": False}
        self.connection = Connection(
            app.conf.broker_url,
            transport_options=options,
            connect_timeout=app.conf.broker_connection_timeout,
        )
        self.confirms = _Confirms(self.connection.channel())
        self.producer = app.amqp.Producer(self.confirms.channel)
        return self

    def __exit__(self, *exc_info) -> None:
        self.connection.release()

    def send(self, envelopes: Iterable[Envelope]) -> None:
        for envelope in envelopes:
            for handler in subscribers(envelope):
                handler.task.apply_async(
                    kwargs={"envelope": envelope.to_wire()},
                    queue=handler.queue,
                    producer=self.producer,
                    retry=False,
                )
                self.confirms.published += 1
        self.confirms.wait_for_all(self.connection, timeout=settings.MESSAGING_CONFIRM_TIMEOUT)

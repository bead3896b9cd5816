"""The worker's message consumer, extended so poison messages become dead letters.

It also leaves out the worker-heartbeat events, so that a silent broker is
noticed (see Consumer.Blueprint).

Celery drops (acks or rejects without requeue) a message it cannot decode,
whose content type it does not accept, or whose task it does not know. That
keeps the queue moving, and this subclass makes sure each one is also kept as
a dead letter with its reason before it goes.
"""

import logging
import time

from celery.worker.consumer import Consumer as CeleryConsumer
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from kombu.exceptions import ContentDisallowed

from .dead_letters import dead_letter_record_raw
from .models import DeadLetter

logger = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    class Blueprint(CeleryConsumer.Blueprint):
        # No worker-heartbeat events (the ones Flower shows). Their producer
        # publishes from the worker's event loop and, when the broker goes
        # silent, sits there reconnecting: the loop can then no longer see
        # the missed AMQP heartbeats that tell it the connection is dead.
        default_steps = [
            step for step in CeleryConsumer.Blueprint.default_steps if not step.endswith(":Heart")
        ]

    def create_task_handler(self, *args, **kwargs):
        on_task_received = super().create_task_handler(*args, **kwargs)

        def on_task_received_or_dead_letter(message):
            size, limit = len(message.body or b""), settings.MESSAGING_MAX_MESSAGE_BYTES
            if size > limit:
                # Not even decoded: a huge body costs memory and time in
                # every step that reads it.
                error = (
                    f"a body of {size} bytes, more than the {limit} bytes "
                    "MESSAGING_MAX_MESSAGE_BYTES allows"
                )
                if self._kept(message, DeadLetter.Reason.OVERSIZED, error, read_envelope=False):
                    message.reject_log_error(logger, self.connection_errors)
                return None
            # A body of the wrong shape (not [args, kwargs, embed]) makes
            # Celery fail while building the request, which would otherwise
            # stop the worker and leave the message to stop the next one.
            try:
                return on_task_received(message)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                error = f"not a task message Celery can read: {type(exc).__name__}: {exc}"
                if self._kept(message, DeadLetter.Reason.MALFORMED, error):
                    message.reject_log_error(logger, self.connection_errors)

        return on_task_received_or_dead_letter

    def on_decode_error(self, message, exc):
        if self._kept(message, DeadLetter.Reason.UNDECODABLE, f"{type(exc).__name__}: {exc}"):
            super().on_decode_error(message, exc)

    def on_unknown_message(self, body, message):
        error = "not a task message: it carries no task name"
        if self._kept(message, DeadLetter.Reason.UNKNOWN_FORMAT, error):
            super().on_unknown_message(body, message)

    def on_unknown_task(self, body, message, exc):
        error = f"no handler is registered as {message.headers.get('task')!r}"
        if self._kept(message, DeadLetter.Reason.UNKNOWN_TASK, error):
            super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body, message, exc):
        reason = (
            DeadLetter.Reason.REJECTED_CONTENT
            if isinstance(exc, ContentDisallowed)
            else DeadLetter.Reason.MALFORMED
        )
        if self._kept(message, reason, f"{type(exc).__name__}: {exc}"):
            super().on_invalid_task(body, message, exc)

    def _kept(self, message, reason: str, error: str, *, read_envelope: bool = True) -> bool:
        """Record the dead letter; if that fails, give the message back to the broker."""
        # The consumer's own process is not cleaned up between tasks by
        # Celery: drop a connection the database has closed meanwhile.
        close_old_connections()
        try:
            dead_letter_record_raw(
                message=message, reason=reason, error=error, read_envelope=read_envelope
            )
        except DatabaseError:
            logger.exception("Could not record a dead letter (%s); requeueing the message", reason)
            close_old_connections()
            time.sleep(1)  # so a database outage does not become a hot loop
            message.reject(requeue=True)
            return False
        logger.error(
            "Dead-lettered a message from %s: %s", message.delivery_info.get("routing_key"), error
        )
        return True

"""Publishing: write the message in the producer's transaction, send it after commit.

A producer calls ``publish(event)`` or ``send(command)`` inside its own
``transaction.atomic()``. The message is written to the outbox in that
transaction; a rollback leaves nothing behind and sends nothing. After the
commit it goes to its subscribers' queues (``messaging.outbox``); what a
handler publishes goes out in one batch when its delivery ends
(``dispatch_together``). Whatever the broker did not confirm, the relay
(``messaging.relay``) sends again later.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import spans
from .context import current_envelope, log_fields_add
from .errors import NoHandler
from .messages import Command, Envelope, Event, Message, MessageTooLarge
from .models import OutboxMessage
from .outbox import Entry, outbox_dispatch
from .signals import message_published, notify
from .subscriptions import handlers_for

logger = logging.getLogger(__name__)


def publish(event: Event, *, correlation_id: str | None = None) -> Envelope:
    """Record an event in the current transaction; it is broadcast after commit."""
    if not isinstance(event, Event):
        raise TypeError(f"publish() takes an Event, not {type(event).__name__}; use send()")
    return _record(event, correlation_id=correlation_id)


def send(command: Command, *, correlation_id: str | None = None) -> Envelope:
    """Record a command in the current transaction; its one handler gets it after commit."""
    if not isinstance(command, Command):
        raise TypeError(f"send() takes a Command, not {type(command).__name__}; use publish()")
    if not handlers_for(type(command)):
        raise NoHandler(f"no handler is subscribed to the command {command.message_type}")
    return _record(command, correlation_id=correlation_id)


def _record(message: Message, *, correlation_id: str | None) -> Envelope:
    # Inside a handler, what is published now was caused by the message being
    # handled and belongs to the same conversation.
    cause = current_envelope()
    message_id = uuid.uuid4()
    correlation_id = correlation_id or (cause.correlation_id if cause else str(message_id))
    causation_id = cause.message_id if cause else None
    with spans.message_creating(
        message_id=message_id,
        kind=message.kind,
        type=message.message_type,
        correlation_id=correlation_id,
        causation_id=causation_id,
        cause=cause,
    ) as trace_context:
        envelope = Envelope(
            message_id=message_id,
            kind=message.kind,
            type=message.message_type,
            version=message.message_version,
            occurred_at=timezone.now(),
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=message.model_dump(mode="json"),
            **trace_context,
        )
        _check_size(envelope)
        if cause is None:
            # A first cause (a web request, a command): the lines it writes from
            # now on say which conversation it started.
            log_fields_add(
                correlation_id=envelope.correlation_id,
                **{name: envelope.payload.get(name) for name in settings.MESSAGING_LOG_FIELDS},
            )
        # No savepoint: should the row fail to go in, the producer's whole
        # transaction must roll back rather than commit its changes without it.
        with transaction.atomic(savepoint=False):
            row = OutboxMessage.from_envelope(envelope)
            row.save(force_insert=True)
            # The dispatch after commit reuses what the producer has: it need not
            # read the row back nor validate the payload again.
            entry = Entry(row.pk, envelope, message)
            transaction.on_commit(lambda: _committed(entry), robust=True)
    return envelope


def _check_size(envelope: Envelope) -> None:
    # Refused here, in the producer's transaction, rather than left to poison
    # a queue: the caller gets the error and nothing is recorded.
    size = len(json.dumps(envelope.to_wire(), separators=(",", ":")).encode())
    if size > settings.MESSAGING_MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"{envelope.type} v{envelope.version} is {size} bytes, more than the "
            f"{settings.MESSAGING_MAX_MESSAGE_BYTES} bytes MESSAGING_MAX_MESSAGE_BYTES allows"
        )


# The entries committed inside dispatch_together(), per thread; None outside it.
_together = threading.local()


@contextmanager
def dispatch_together() -> Iterator[None]:
    """Dispatch the messages committed inside this block together, when it ends.

    A handler that publishes several messages in its transaction then waits
    once for the broker's confirms and marks them all dispatched in one
    UPDATE, instead of once per message. In a nested block the outer one
    dispatches.
    """
    if getattr(_together, "entries", None) is not None:
        yield
        return
    _together.entries = []
    try:
        yield
    finally:
        entries, _together.entries = _together.entries, None
        if entries:
            # As robust as on_commit(robust=True): the messages are committed
            # either way, and the relay sends what this could not.
            try:
                _dispatch_after_commit(entries)
            except Exception:
                logger.exception("Dispatch of %s committed messages failed", len(entries))


def _committed(entry: Entry) -> None:
    gathered = getattr(_together, "entries", None)
    if gathered is not None:
        gathered.append(entry)
    else:
        _dispatch_after_commit([entry])


# Until when (time.monotonic()) this process leaves committed messages to the
# relay, because a dispatch just failed.
_dispatch_paused_until = 0.0


def _dispatch_after_commit(entries: list[Entry]) -> None:
    """Dispatch at once, unless the broker failed this process moments ago.

    While the broker is down or silent every dispatch would wait for its
    timeouts; for MESSAGING_DISPATCH_PAUSE seconds after a failure the
    producer does not wait at all and the relay sends the message instead.
    """
    global _dispatch_paused_until
    notify(message_published, envelopes=[entry.envelope for entry in entries])
    if time.monotonic() < _dispatch_paused_until:
        logger.debug("Dispatch paused; %s messages left to the relay", len(entries))
        return
    if outbox_dispatch(entries).broker_error:
        _dispatch_paused_until = time.monotonic() + settings.MESSAGING_DISPATCH_PAUSE
        logger.warning(
            "Committed messages go to the relay for the next %ss, not to the broker at once",
            settings.MESSAGING_DISPATCH_PAUSE,
        )


def dispatch_pause_reset() -> None:
    """Dispatch the next committed message at once again (tests; a process that knows better)."""
    global _dispatch_paused_until
    _dispatch_paused_until = 0.0

"""One delivery of a message to a handler: read it, run it once, retry it or dead-letter it.

The handler runs in one transaction with an inbox record (message id +
handler), so a redelivered or duplicated message takes effect once.
Failures retry with exponential backoff and jitter, sent back to the
handler's own queue after the delay, which waits in a retry queue on
RabbitMQ, never in a worker (``messaging.transport``); what can never succeed, or
still fails after the last retry, goes to the dead letters and the queue
moves on. After a delivery took effect ``delivery_handled`` is sent, after a
retry was published ``delivery_retried``, and after every delivery
``delivery_finished``, with its outcome and how long it took.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from celery.exceptions import Reject
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone
from pydantic import ValidationError

from . import spans, transport
from .context import handling
from .dead_letters import dead_letter_record
from .errors import DependencyUnavailable, PermanentError, RetryLater
from .messages import Envelope, Message, MessageError, UnknownMessage, envelope_read, registry
from .models import DeadLetter, InboxRecord
from .publishing import dispatch_together
from .signals import delivery_finished, delivery_handled, delivery_retried, notify
from .subscriptions import Handler

logger = logging.getLogger(__name__)

# The task keywords a delivery may carry; a retry adds the last two.
KEYWORDS = {"envelope", "first_failed_at", "deferrals"}
# Failures to read a message: their traceback says nothing a person needs.
_READ_ERRORS = {
    DeadLetter.Reason.MALFORMED,
    DeadLetter.Reason.UNKNOWN_MESSAGE,
    DeadLetter.Reason.INVALID_PAYLOAD,
}


class Outcome(StrEnum):
    """What became of a delivery: the task's return value, and ``delivery_finished``'s."""

    HANDLED = "handled"
    DUPLICATE = "duplicate"  # the inbox says this handler took effect already
    FILTERED = "filtered"  # the handler's ``when`` does not want it
    RETRIED = "retried"
    DEFERRED = "deferred"  # put off while a dependency is down, no attempt used
    DEAD_LETTERED = "dead-lettered"


@dataclass(frozen=True)
class Delivery:
    """What Celery handed the handler's task: its keywords and how often it came before."""

    handler: Handler
    kwargs: dict[str, Any]
    retries: int

    @property
    def deferrals(self) -> int:
        """Deliveries put off while a dependency was down; they do not count as attempts."""
        return self.kwargs.get("deferrals") or 0

    @property
    def attempts(self) -> int:
        return self.retries - self.deferrals


def delivery_run(*, handler: Handler, args: tuple, kwargs: dict, retries: int) -> str:
    """Run one delivery of a message to a handler; returns what became of it (an Outcome)."""
    started = time.perf_counter()
    delivery = Delivery(handler=handler, kwargs=kwargs, retries=retries)
    with spans.delivering(
        handler_name=handler.name, queue=handler.queue, data=kwargs.get("envelope"), retries=retries
    ) as span:
        envelope, outcome = _run(delivery, args)
        spans.delivery_outcome(span, outcome)
    notify(
        delivery_finished,
        handler=handler.name,
        envelope=envelope,
        outcome=outcome,
        seconds=time.perf_counter() - started,
    )
    return outcome.value


def _run(delivery: Delivery, args: tuple) -> tuple[Envelope | None, Outcome]:
    handler = delivery.handler
    try:
        envelope, message = _read(delivery, args)
    except MessageError as exc:
        return None, _dead_letter(delivery, reason=exc.reason, error=str(exc))
    if delivery.attempts > settings.MESSAGING_MAX_RETRIES:
        # Only a worker that died handling it brings a message here.
        error = f"gave up after {delivery.attempts} deliveries: the worker died handling it"
        outcome = _dead_letter(delivery, reason=DeadLetter.Reason.RETRIES_EXHAUSTED, error=error)
        return envelope, outcome
    if not handler.wants(message):
        return envelope, Outcome.FILTERED
    return envelope, _attempt(delivery, envelope, message)


def _attempt(delivery: Delivery, envelope: Envelope, message: Message) -> Outcome:
    handler = delivery.handler
    try:
        outcome = _handle(handler, envelope, message)
    except (PermanentError, MessageError, ValidationError) as exc:
        reason = DeadLetter.Reason.PERMANENT_ERROR
        return _dead_letter(delivery, reason=reason, error=_describe(exc))
    except DependencyUnavailable as exc:
        countdown = deferral_delay(exc.retry_in, tiers=transport.delay_tiers())
        logger.warning(
            "%s put off %s for %.2fs: %s", handler.name, envelope.message_id, countdown, exc
        )
        return _defer(delivery, envelope, exc, countdown=countdown)
    except RetryLater as exc:
        if _waited(delivery) >= settings.MESSAGING_RETRY_LATER_WINDOW:
            return _retry_or_dead_letter(delivery, envelope, exc)
        # What it depends on is on its way (another queue's message, or one the
        # relay is still to send after a broker failed): wait for it without
        # using a retry, backing off as a retry would.
        countdown = retry_delay(delivery.retries, tiers=transport.delay_tiers())
        logger.info(
            "%s waits for what %s depends on, again in %.2fs: %s",
            handler.name,
            envelope.message_id,
            countdown,
            exc,
        )
        return _defer(delivery, envelope, exc, countdown=countdown)
    except Exception as exc:
        return _retry_or_dead_letter(delivery, envelope, exc)
    if outcome == Outcome.HANDLED:
        notify(delivery_handled, handler=handler.name, envelope=envelope)
    return outcome


def _defer(delivery: Delivery, envelope: Envelope, exc: Exception, *, countdown: float) -> Outcome:
    """Send it back for later without using a retry (counted as a deferral)."""
    outcome = _retry(delivery, envelope, exc, countdown=countdown, deferrals=delivery.deferrals + 1)
    return Outcome.DEFERRED if outcome == Outcome.RETRIED else outcome


def _waited(delivery: Delivery) -> float:
    """Seconds since the delivery's first failure (0 on the first)."""
    first = delivery.kwargs.get("first_failed_at")
    if not first:
        return 0.0
    try:
        return (timezone.now() - datetime.fromisoformat(first)).total_seconds()
    except (TypeError, ValueError):
        return float("inf")  # unreadable: its retries count, as any other's


def _retry_or_dead_letter(delivery: Delivery, envelope: Envelope, exc: Exception) -> Outcome:
    if delivery.attempts >= settings.MESSAGING_MAX_RETRIES:
        return _dead_letter(
            delivery, reason=DeadLetter.Reason.RETRIES_EXHAUSTED, error=_describe(exc)
        )
    countdown = retry_delay(delivery.attempts, tiers=transport.delay_tiers())
    logger.warning(
        "%s failed on %s (attempt %s), retrying in %.2fs: %s",
        delivery.handler.name,
        envelope.message_id,
        delivery.attempts + 1,
        countdown,
        _describe(exc),
    )
    return _retry(delivery, envelope, exc, countdown=countdown, deferrals=delivery.deferrals)


def _read(delivery: Delivery, args: tuple) -> tuple[Envelope, Message]:
    if args or set(delivery.kwargs) - KEYWORDS:
        raise MessageError(
            f"unexpected task arguments: {len(args)} positional, keywords {sorted(delivery.kwargs)}"
        )
    envelope = envelope_read(delivery.kwargs.get("envelope"))
    message = registry.read(envelope)
    if type(message) not in delivery.handler.message_classes:
        raise UnknownMessage(
            f"{delivery.handler.name} does not handle {envelope.type} v{envelope.version}"
        )
    return envelope, message


def _handle(handler: Handler, envelope: Envelope, message: Message) -> Outcome:
    # What the handler publishes goes out in one batch after the commit.
    with dispatch_together(), transaction.atomic():
        if not inbox_claim(message_id=envelope.message_id, handler_name=handler.name):
            logger.info("%s already handled %s; skipped", handler.name, envelope.message_id)
            return Outcome.DUPLICATE
        with handling(envelope), spans.handler_running(handler.name):
            handler.fn(message, envelope)
    return Outcome.HANDLED


def inbox_claim(*, message_id: UUID, handler_name: str) -> bool:
    """Record that this handler takes effect for this message; False if it already has.

    Must run inside the handler's transaction: if the handler fails, the claim
    rolls back with it. A concurrent claim of the same pair waits on the
    unique index until the first transaction ends.
    """
    table = connection.ops.quote_name(InboxRecord._meta.db_table)
    fields = {f.name: f for f in InboxRecord._meta.fields}
    params = [
        fields["message_id"].get_db_prep_value(message_id, connection),
        handler_name,
        fields["processed_at"].get_db_prep_value(timezone.now(), connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (message_id, handler, processed_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (message_id, handler) DO NOTHING",
            params,
        )
        return cursor.rowcount == 1


def retry_delay(retries: int, *, tiers: tuple[float, ...] | None = None) -> float:
    """Exponential backoff with equal jitter: between half and all of base * 2**retries.

    With tiers (the retry queues' delays on RabbitMQ) the jitter picks one of
    the tiers in that window at random: of base * 2**retries and its half,
    uncapped.
    """
    ceiling = min(
        settings.MESSAGING_RETRY_BACKOFF_MAX, settings.MESSAGING_RETRY_BACKOFF * 2**retries
    )
    if tiers:
        window = [t for t in tiers if ceiling / 2 - 1e-9 <= t <= ceiling + 1e-9]
        return random.choice(window or [min(tiers, key=lambda t: abs(t - ceiling))])
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def deferral_delay(retry_in: float, *, tiers: tuple[float, ...] | None = None) -> float:
    """How long a delivery put off while a dependency is down waits: ``retry_in`` and up to half
    as long again; with tiers, the shortest no shorter than ``retry_in`` (else the longest)."""
    if tiers:
        return next((t for t in tiers if t >= retry_in), tiers[-1])
    return retry_in * random.uniform(1, 1.5)


def _retry(
    delivery: Delivery, envelope: Envelope, exc: Exception, *, countdown: float, deferrals: int
) -> Outcome:
    """Send the message back to the handler's own queue, to be delivered in ``countdown`` s."""
    first_failed_at = delivery.kwargs.get("first_failed_at") or timezone.now().isoformat()
    extra = {"first_failed_at": first_failed_at}
    if deferrals:
        extra["deferrals"] = deferrals
    again = transport.Copy(
        delivery.handler,
        delivery.kwargs["envelope"],
        retries=delivery.retries + 1,
        delay=countdown,
        extra=extra,
    )
    try:
        transport.send([again])
    except Exception as publish_error:
        # The broker is failing (a node lost, leaders being elected): the
        # message is not poison, so it goes back to the broker, which holds
        # it until it is delivered again, instead of to the dead letters,
        # where its order would wait for staff. A pause keeps an outage from
        # turning into a hot loop; on a quorum queue the delivery limit
        # bounds the loop.
        logger.error(
            "The retry of %s for %s could not be published (%s); handing it back to the broker",
            envelope.message_id,
            delivery.handler.name,
            _describe(publish_error),
        )
        time.sleep(1)
        raise Reject(publish_error, requeue=True) from exc
    notify(
        delivery_retried,
        handler=delivery.handler.name,
        envelope=envelope,
        attempt=delivery.attempts + 1,
        countdown=countdown,
        queue=delivery.handler.queue,
        deferred=deferrals > delivery.deferrals,
        deferrals=deferrals,
    )
    return Outcome.RETRIED


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _dead_letter(delivery: Delivery, *, reason: str, error: str) -> Outcome:
    data = delivery.kwargs.get("envelope")
    now = timezone.now()
    # The handler may have failed because the database dropped its
    # connection; start the dead letter on a working one.
    close_old_connections()
    try:
        dead_letter_record(
            reason=reason,
            error=error,
            traceback_text=traceback.format_exc() if reason not in _READ_ERRORS else "",
            handler_name=delivery.handler.name,
            queue=delivery.handler.queue,
            envelope=data if isinstance(data, dict) else None,
            body="" if isinstance(data, dict) else repr(delivery.kwargs)[:10_000],
            attempts=delivery.retries + 1,
            first_failed_at=delivery.kwargs.get("first_failed_at") or now,
            last_failed_at=now,
        )
    except (OperationalError, InterfaceError) as exc:
        # Without the dead letter the message would be lost: while the
        # database is unreachable, hand it back to the broker instead, after
        # a pause so an outage does not turn into a hot loop.
        logger.error("Could not record a dead letter for %s: %s", delivery.handler.name, exc)
        time.sleep(1)
        raise Reject(exc, requeue=True) from exc
    logger.error("Dead-lettered a message for %s (%s): %s", delivery.handler.name, reason, error)
    return Outcome.DEAD_LETTERED

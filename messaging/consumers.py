"""Consuming: each handler is a Celery task on its app's queue that takes effect once.

An app declares a handler in its ``handlers.py``::

    @handler(OrderPlaced)
    def charge_for_order(event: OrderPlaced, envelope: Envelope) -> None: ...

and subscribes it in its ``receivers.py``, imported from ``AppConfig.ready()``::

    subscribe(handlers.charge_for_order)

The task validates the envelope and the payload, then runs the handler in one
transaction with an inbox record (message id + handler), so a redelivered or
duplicated message takes effect once. Failures retry with exponential backoff
and jitter; what can never succeed, or still fails after the last retry, goes
to the dead letters and the queue moves on.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from uuid import UUID

from celery import shared_task
from celery.exceptions import Reject, Retry
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone
from pydantic import ValidationError

from .dead_letters import dead_letter_record
from .messages import Envelope, Message, MessageError, UnknownMessage, envelope_read, registry
from .models import DeadLetter, InboxRecord
from .signals import message_committed

logger = logging.getLogger(__name__)

_current_envelope: ContextVar[Envelope | None] = ContextVar("current_envelope", default=None)


def current_envelope() -> Envelope | None:
    """The envelope being handled in this context, if any."""
    return _current_envelope.get()


class PermanentError(Exception):
    """Raised by a handler for a failure that no retry can fix: dead-letter at once."""


class RetryLater(Exception):
    """Raised by a handler whose message arrived before something it depends on.

    Messages on different queues arrive in no guaranteed order; the retry
    (with backoff) gives the other one time to land.
    """


class DependencyUnavailable(Exception):
    """Raised by a handler when something it needs is down (its circuit breaker is open).

    The delivery tries again after ``retry_in`` seconds (plus jitter) without
    using up its retries: an outage longer than the retry budget must not
    turn every message behind it into a dead letter.
    """

    def __init__(self, message: str, *, retry_in: float):
        super().__init__(message)
        self.retry_in = retry_in


class Handler:
    """A function that reacts to messages, with the Celery task that delivers them to it."""

    def __init__(
        self,
        fn: Callable,
        message_classes: tuple[type[Message], ...],
        queue: str,
        name: str,
        when: Callable[[Message], bool] | None = None,
    ):
        self.fn = fn
        self.message_classes = message_classes
        self.queue = queue
        self.name = name
        self.when = when

        def deliver(task, *args, **kwargs) -> str:
            return handle_delivery(task=task, handler=self, args=args, kwargs=kwargs)

        self.task = shared_task(
            bind=True,
            name=name,
            queue=queue,
            acks_late=True,
            reject_on_worker_lost=True,
            # A worker process that dies mid-task sends the message again as
            # a retry, so it counts towards the limit instead of looping.
            retry_on_worker_lost=True,
            default_retry_delay=settings.MESSAGING_RETRY_BACKOFF,
            max_retries=None,
            # The inbox records what took effect and the dead letters what
            # failed: a result row per delivery would only cost a write.
            ignore_result=True,
            typing=False,
        )(deliver)

    def __repr__(self) -> str:
        return f"<Handler {self.name} on {self.queue!r}>"

    def __call__(self, message: Message, envelope: Envelope) -> None:
        self.fn(message, envelope)

    def wants(self, message: Message) -> bool:
        """Whether this handler takes this message at all (its ``when`` filter)."""
        return self.when is None or self.when(message)

    def enqueue(self, envelope: Envelope, *, batch=None) -> None:
        """Put the envelope on this handler's queue; returns once the broker confirmed it.

        With a ``batch`` (a ``pipelined.DispatchBatch``) the copy joins the
        batch instead, and is confirmed with the other copies of the message.
        """
        if batch is not None:
            batch.add(self, envelope)
            return
        self.task.apply_async(
            **self.publish_options(envelope), confirm_timeout=settings.MESSAGING_CONFIRM_TIMEOUT
        )

    def publish_options(self, envelope: Envelope) -> dict:
        """The ``apply_async`` options that put this envelope on this handler's queue."""
        wire = envelope.to_wire()
        return {"kwargs": {"envelope": wire}, "queue": self.queue, **task_reprs(wire)}


def task_reprs(wire: dict) -> dict:
    """A short description of a delivery for Celery's monitoring (Flower, events, logs).

    Without it Celery builds a truncated repr of the whole envelope for
    every publish, which costs more CPU than the publish itself.
    """
    kwargs = f"{{'envelope': {wire.get('type')} v{wire.get('version')} {wire.get('message_id')}}}"
    return {"argsrepr": "()", "kwargsrepr": kwargs}


_handlers: dict[str, Handler] = {}
_subscriptions: dict[type[Message], list[Handler]] = {}


def handler(
    *message_classes: type[Message],
    queue: str | None = None,
    when: Callable[[Message], bool] | None = None,
) -> Callable[[Callable], Handler]:
    """Declare a handler of the given messages, consumed from its app's queue.

    ``when`` filters by content: a message it returns False for is never
    put on this handler's queue (the producer checks it), and is skipped
    should one arrive anyway (a redrive of an older message, say).
    """
    if not message_classes:
        raise TypeError("handler() needs at least one message class")

    def decorate(fn: Callable) -> Handler:
        app_config = apps.get_containing_app_config(fn.__module__)
        if app_config is None:
            raise ImproperlyConfigured(f"{fn.__module__} is not inside an installed app")
        name = f"{app_config.label}.{fn.__name__}"
        if name in _handlers and _handlers[name].fn.__qualname__ != fn.__qualname__:
            raise ImproperlyConfigured(f"two handlers are named {name}")
        declared = Handler(fn, message_classes, queue or app_config.label, name, when)
        _handlers[name] = declared
        return declared

    return decorate


def subscribe(handler: Handler) -> None:
    """Connect a handler to ``message_committed`` for each message class it handles."""
    for message_class in handler.message_classes:
        subscribed = _subscriptions.setdefault(message_class, [])
        if handler in subscribed:
            continue
        if message_class.kind == "command" and subscribed:
            raise ImproperlyConfigured(
                f"the command {message_class.message_type} already has a handler "
                f"({subscribed[0].name}); a command goes to exactly one"
            )
        subscribed.append(handler)
        message_committed.connect(
            _receiver_for(handler),
            sender=message_class,
            weak=False,
            dispatch_uid=(
                f"{handler.name}<-{message_class.message_type}@v{message_class.message_version}"
            ),
        )


class Dispatch:
    """One dispatch of a message to its subscribers; the first failure stops the rest.

    The relay sends the whole message again later, so going on after the
    broker failed once would only make the producer wait longer.
    """

    def __init__(self, batch=None, message: Message | None = None) -> None:
        self.failure: Exception | None = None
        # A pipelined.DispatchBatch when the broker confirms publishes: the
        # subscribers' copies are then sent together and confirmed at once.
        self.batch = batch
        # The payload, when the producer still has it (it need not be read again).
        self._message = message

    def message(self, envelope: Envelope) -> Message:
        """The payload read once, for the subscribers' ``when`` filters."""
        if self._message is None:
            self._message = registry.read(envelope)
        return self._message


def _receiver_for(handler: Handler) -> Callable[..., None]:
    def enqueue(sender: type[Message], envelope: Envelope, dispatch: Dispatch, **kwargs) -> None:
        if dispatch.failure is not None:
            return
        try:
            if handler.when is not None and not handler.wants(dispatch.message(envelope)):
                return
            handler.enqueue(envelope, batch=dispatch.batch)
        except Exception as exc:
            dispatch.failure = exc
            raise

    return enqueue


def handlers_for(message_class: type[Message]) -> list[Handler]:
    return list(_subscriptions.get(message_class, []))


def handler_named(name: str) -> Handler | None:
    return _handlers.get(name)


def retry_delay(retries: int) -> float:
    """Exponential backoff with equal jitter: between half and all of base * 2**retries."""
    ceiling = min(
        settings.MESSAGING_RETRY_BACKOFF_MAX, settings.MESSAGING_RETRY_BACKOFF * 2**retries
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)


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


def handle_delivery(*, task, handler: Handler, args: tuple, kwargs: dict) -> str:
    """Run one delivery of a message to a handler; returns what became of it."""
    data = kwargs.get("envelope")
    try:
        if args or set(kwargs) - {"envelope", "first_failed_at", "deferrals"}:
            raise MessageError(
                f"unexpected task arguments: {len(args)} positional, keywords {sorted(kwargs)}"
            )
        envelope = envelope_read(data)
        message = registry.read(envelope)
        if type(message) not in handler.message_classes:
            raise UnknownMessage(
                f"{handler.name} does not handle {envelope.type} v{envelope.version}"
            )
    except MessageError as exc:
        return _dead_letter(task, handler, kwargs, reason=exc.reason, error=str(exc))
    deferrals = kwargs.get("deferrals") or 0
    # Deliveries put off while a dependency was down do not count.
    attempts = task.request.retries - deferrals
    if attempts > settings.MESSAGING_MAX_RETRIES:
        # Only a worker that died handling it brings a message here.
        return _dead_letter(
            task,
            handler,
            kwargs,
            reason=DeadLetter.Reason.RETRIES_EXHAUSTED,
            error=f"gave up after {attempts} deliveries: the worker died handling it",
        )

    if not handler.wants(message):
        return "not for this handler"
    # Imported here: publishing builds on this module.
    from .publishing import dispatch_together

    try:
        # What the handler publishes goes out in one batch after the commit.
        with dispatch_together(), transaction.atomic():
            if not inbox_claim(message_id=envelope.message_id, handler_name=handler.name):
                logger.info("%s already handled %s; skipped", handler.name, envelope.message_id)
                return "duplicate"
            token = _current_envelope.set(envelope)
            try:
                handler.fn(message, envelope)
            finally:
                _current_envelope.reset(token)
        return "handled"
    except (PermanentError, MessageError, ValidationError) as exc:
        return _dead_letter(
            task, handler, kwargs, reason=DeadLetter.Reason.PERMANENT_ERROR, error=_describe(exc)
        )
    except DependencyUnavailable as exc:
        countdown = exc.retry_in * random.uniform(1, 1.5)
        logger.warning(
            "%s put off %s for %.2fs: %s", handler.name, envelope.message_id, countdown, exc
        )
        return _retry(task, handler, kwargs, exc, countdown=countdown, deferrals=deferrals + 1)
    except Exception as exc:
        retries = attempts
        if retries >= settings.MESSAGING_MAX_RETRIES:
            return _dead_letter(
                task,
                handler,
                kwargs,
                reason=DeadLetter.Reason.RETRIES_EXHAUSTED,
                error=_describe(exc),
            )
        countdown = retry_delay(retries)
        logger.warning(
            "%s failed on %s (attempt %s), retrying in %.2fs: %s",
            handler.name,
            envelope.message_id,
            retries + 1,
            countdown,
            _describe(exc),
        )
        return _retry(task, handler, kwargs, exc, countdown=countdown, deferrals=deferrals)


def _retry(task, handler: Handler, kwargs: dict, exc: Exception, *, countdown, deferrals) -> str:
    first_failed_at = kwargs.get("first_failed_at") or timezone.now().isoformat()
    retry_kwargs = {"envelope": kwargs.get("envelope"), "first_failed_at": first_failed_at}
    if deferrals:
        retry_kwargs["deferrals"] = deferrals
    try:
        raise task.retry(
            exc=exc,
            countdown=countdown,
            kwargs=retry_kwargs,
            confirm_timeout=settings.MESSAGING_CONFIRM_TIMEOUT,
            **task_reprs(retry_kwargs["envelope"]),
        ) from exc
    except Retry:
        raise
    except Exception as publish_error:
        error = f"{_describe(exc)}; its retry could not be published: {_describe(publish_error)}"
        return _dead_letter(
            task, handler, kwargs, reason=DeadLetter.Reason.RETRY_FAILED, error=error
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# Failures to read a message: their traceback says nothing a person needs.
_READ_ERRORS = {
    DeadLetter.Reason.MALFORMED,
    DeadLetter.Reason.UNKNOWN_MESSAGE,
    DeadLetter.Reason.INVALID_PAYLOAD,
}


def _dead_letter(task, handler: Handler, kwargs: dict, *, reason: str, error: str) -> str:
    data = kwargs.get("envelope")
    now = timezone.now()
    first_failed_at = kwargs.get("first_failed_at")
    # The handler may have failed because the database dropped its
    # connection; start the dead letter on a working one.
    close_old_connections()
    try:
        dead_letter_record(
            reason=reason,
            error=error,
            traceback_text=traceback.format_exc() if reason not in _READ_ERRORS else "",
            handler_name=handler.name,
            queue=handler.queue,
            envelope=data if isinstance(data, dict) else None,
            body="" if isinstance(data, dict) else repr(kwargs)[:10_000],
            attempts=task.request.retries + 1,
            first_failed_at=first_failed_at or now,
            last_failed_at=now,
        )
    except (OperationalError, InterfaceError) as exc:
        # Without the dead letter the message would be lost: while the
        # database is unreachable, hand it back to the broker instead, after
        # a pause so an outage does not turn into a hot loop.
        logger.error("Could not record a dead letter for %s: %s", handler.name, exc)
        time.sleep(1)
        raise Reject(exc, requeue=True) from exc
    logger.error("Dead-lettered a message for %s (%s): %s", handler.name, reason, error)
    return "dead-lettered"

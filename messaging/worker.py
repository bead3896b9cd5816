"""The worker's message consumer, extended so poison messages become dead letters.

It also sends Celery's monitoring events (worker heartbeats, task events)
from a thread of its own, so that a silent broker is noticed while Flower
watches (``messaging.worker_events``), keeps the event loop's timer free of
cancelled time limits, so that the worker's main process does not grow with
the message rate, runs the outbox relay on a timer of its own, so that no
worker must be remembered for it, and keeps a heartbeat file for a
supervisor's liveness probe (see Consumer.Blueprint).

Celery drops (acks or rejects without requeue) a message it cannot decode,
whose content type it does not accept, or whose task it does not know. That
keeps the queue moving, and this subclass makes sure each one is also kept as
a dead letter with its reason before it goes.

On quorum queues every worker also consumes ``dead_letters``, whatever its
``-Q``: what RabbitMQ dead-lettered there (a message past its queue's delivery
limit) is kept as a DeadLetter and acknowledged, never run.
"""

import heapq
import logging
import time
from typing import Any

from celery import bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.events import Events as CeleryEvents
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from kombu.exceptions import ContentDisallowed

from . import worker_events
from .dead_letters import dead_letter_record_raw
from .fanout import FANNED_OUT_TASK, address_copy, handlers_named
from .liveness import CONNECTING, WorkerHeartbeat
from .models import DeadLetter
from .queues import DEAD_LETTER_QUEUE, dead_letter_queue
from .tasks import relay_outbox_in_worker

logger = logging.getLogger(__name__)

# Seconds between two sweeps of the timer: at most this many seconds' worth of
# finished tasks' cancelled time limits are held at any time.
TIMER_SWEEP_INTERVAL = 5.0
# Without a task time limit: how long a relay run may go before the next is started anyway.
RELAY_RUN_LIMIT = 300.0
# Celery's step for monitoring events, and ours in its place.
CELERY_EVENTS = "celery.worker.consumer.events:Events"
EVENTS = "messaging.worker_events:Events"
CELERY_DELAYED_DELIVERY = "celery.worker.consumer.delayed_delivery:DelayedDelivery"


def drop_cancelled_timer_entries(timer) -> int:
    """Remove the cancelled entries from a kombu timer's heap; returns how many went.

    A cancelled entry is only marked as such: kombu's Timer keeps it in its heap
    (and skips it) until its time comes. Dropping it earlier changes nothing
    but the memory it holds.
    """
    queue = timer._queue  # kombu.asynchronous.timer.Timer's heap of scheduled(eta, priority, entry)
    live = [item for item in queue if not item.entry.canceled]
    dropped = len(queue) - len(live)
    if dropped:
        heapq.heapify(live)
        queue[:] = live  # the same list: Timer.__iter__ holds a reference to it
    return dropped


class TimerSweep(bootsteps.StartStopStep):
    """Sweep the cancelled entries out of the event loop's timer every few seconds.

    The prefork pool starts a soft time limit timer (CELERY_TASK_SOFT_TIME_LIMIT)
    for each task it runs and cancels it when the task returns, but the
    cancelled entry stays in the timer until the limit would have expired: the
    main process holds rate x soft limit of them, about 0.5 KB each (celery
    issues #1129, #5200). With a 60 s limit that is some 13 MB at 450 messages/s,
    and it grows with the limit and the rate.
    """

    label = "TimerSweep"

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.tref = None

    def include_if(self, c):
        return c.hub is not None  # only the event loop (prefork) has the timer

    def start(self, c):
        # Registered while the consumer connects, so Celery cancels it along
        # with the connection's other timer entries if the connection fails;
        # the next start registers it again.
        self.tref = c.hub.call_repeatedly(
            TIMER_SWEEP_INTERVAL, drop_cancelled_timer_entries, c.hub.timer
        )

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop


class RelayTimer(bootsteps.StartStopStep):
    """Run the outbox relay every MESSAGING_RELAY_INTERVAL from this worker, in its pool.

    Every app worker relays, so what a failed dispatch after commit left in
    the outbox is sent as long as any worker runs, with no worker for the
    messaging queue or beat to remember. The relays of several workers are
    safe together (messaging.relay: a row is taken by one relay at a time).
    The timer only hands the run to a pool process, as it would a task: the
    relay's database and broker calls never block the event loop, which must
    keep answering the broker's heartbeats. One run at a time per worker: a
    tick while the last run is still going (or was lost with its process,
    until the hard time limit has passed) is skipped.
    """

    label = "RelayTimer"

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.tref = None
        self.running_since: float | None = None

    def include_if(self, c):
        return settings.MESSAGING_WORKER_RELAY

    def start(self, c):
        # Registered while the consumer connects, as TimerSweep is: while the
        # broker is unreachable nothing could be sent anyway.
        self.tref = c.timer.call_repeatedly(settings.MESSAGING_RELAY_INTERVAL, self.tick, (c,))

    def tick(self, c) -> None:
        now = time.monotonic()
        limit = c.app.conf.task_time_limit or RELAY_RUN_LIMIT
        if self.running_since is not None and now - self.running_since < limit:
            return
        self.running_since = now
        c.pool.apply_async(
            relay_outbox_in_worker,
            args=(c.hostname,),
            callback=self._done,
            error_callback=self._done,
            soft_timeout=c.app.conf.task_soft_time_limit,
            timeout=c.app.conf.task_time_limit,
        )

    def _done(self, result) -> None:
        self.running_since = None

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop


class Consumer(CeleryConsumer):
    # Celery sets these; celery-types leaves them out.
    connection_errors: tuple[type[BaseException], ...]
    task_consumer: Any

    # celery-types declares Consumer.Blueprint as a variable, not the class it is.
    class Blueprint(CeleryConsumer.Blueprint):  # type: ignore[valid-type, misc]
        # Celery's monitoring events (worker heartbeats, and the task events
        # Flower turns on) leave through a thread of their own
        # (messaging.worker_events): Celery's dispatcher publishes them from
        # the event loop, which, with a silent broker, would sit there
        # reconnecting and no longer see the missed AMQP heartbeats that
        # tell it the connection is dead.
        # Nor does it set up Celery's native delayed delivery, which it would
        # on quorum queues: our retries wait in retry queues of their own
        # (messaging.queues), and its topic exchanges route nothing to our
        # direct ones.
        default_steps = [
            EVENTS if step == CELERY_EVENTS else step
            for step in CeleryConsumer.Blueprint.default_steps
            if step != CELERY_DELAYED_DELIVERY
        ] + [
            "messaging.worker:TimerSweep",
            "messaging.worker:RelayTimer",
            "messaging.liveness:WorkerHeartbeat",
        ]

        def _firstpass(self, steps):
            super()._firstpass(steps)
            # Celery's steps that need its Events step (Heart, Mingle) get ours,
            # which stands in its place under its name.
            for step in steps.values():
                step.requires = [
                    worker_events.Events if required is CeleryEvents else required
                    for required in step.requires
                ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.MESSAGING_QUEUE_TYPE == "quorum":
            # Added to what -Q selected (or to every queue), so that whichever
            # workers run, one of them drains it.
            self.app.amqp.queues.select_add(dead_letter_queue(queue_type="quorum"))

    def ensure_connected(self, conn):
        """Celery's, beating the heartbeat file between attempts while the broker is away.

        Waiting for the broker is not being stuck: kombu calls the callback
        before each attempt and every second of the wait between two.
        """
        ensure_connection = conn.ensure_connection

        def ensure_connection_beating(*args, callback=None, **kwargs):
            def between_attempts():
                WorkerHeartbeat.beat(self, CONNECTING)
                if callback is not None:
                    callback()

            return ensure_connection(*args, callback=between_attempts, **kwargs)

        conn.ensure_connection = ensure_connection_beating
        return super().ensure_connected(conn)

    def create_task_handler(self, *args, **kwargs):
        on_task_received = super().create_task_handler(*args, **kwargs)

        def on_task_received_or_dead_letter(message):
            if self._queue_consumed_by(message.delivery_info.get("consumer_tag")) == (
                DEAD_LETTER_QUEUE
            ):
                reason, error, queue = _broker_dead_lettered(message.headers)
                if queue and message.headers.get("task") == FANNED_OUT_TASK:
                    # The copy of the queue it died on: kept under that queue's handler.
                    address_copy(message.headers, message.delivery_info, queue)
                if self._kept(message, reason, error, queue=queue):
                    message.ack()
                return None
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
            headers = message.headers
            fanned_out = isinstance(headers, dict) and headers.get("task") == FANNED_OUT_TASK
            if fanned_out and not self._addressed(message):
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

    def _addressed(self, message) -> bool:
        """Turn a copy of a message published for several queues into its queue's delivery.

        RabbitMQ delivers each queue's copy with the same headers: the
        consumer tag says which queue this one came from. A copy that names
        no handler for it becomes a dead letter.
        """
        queue = self._queue_consumed_by(message.delivery_info.get("consumer_tag"))
        if queue is None and not message.delivery_info.get("redelivered"):
            # Its consumer is being cancelled (kombu forgets the tag before
            # the broker stops delivering): back to the queue for another.
            message.reject_log_error(logger, self.connection_errors, requeue=True)
            return False
        if queue is not None and address_copy(message.headers, message.delivery_info, queue):
            return True
        error = (
            f"a message published for several queues arrived on {queue or 'an unknown queue'} "
            f"but names no handler for it (it names {handlers_named(message.headers)})"
        )
        if self._kept(message, DeadLetter.Reason.UNKNOWN_TASK, error, queue=queue):
            message.reject_log_error(logger, self.connection_errors)
        return False

    def _queue_consumed_by(self, consumer_tag) -> str | None:
        # kombu keeps the tag of each queue it consumes (a handful).
        active = getattr(self.task_consumer, "_active_tags", {})
        return next((queue for queue, tag in active.items() if tag == consumer_tag), None)

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

    def _kept(
        self,
        message,
        reason: str,
        error: str,
        *,
        read_envelope: bool = True,
        queue: str | None = None,
    ) -> bool:
        """Record the dead letter; if that fails, give the message back to the broker."""
        # The consumer's own process is not cleaned up between tasks by
        # Celery: drop a connection the database has closed meanwhile.
        close_old_connections()
        try:
            dead_letter_record_raw(
                message=message,
                reason=reason,
                error=error,
                read_envelope=read_envelope,
                queue=queue,
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


def _broker_dead_lettered(headers: Any) -> tuple[str, str, str | None]:
    """Why RabbitMQ dead-lettered a message, from its x-death headers: the arguments of _kept."""
    headers = headers if isinstance(headers, dict) else {}
    deaths = headers.get("x-death") or [{}]
    death = deaths[0] if isinstance(deaths[0], dict) else {}
    cause = str(headers.get("x-first-death-reason") or death.get("reason") or "unknown")
    queue = str(headers.get("x-first-death-queue") or death.get("queue") or "") or None
    if cause == "delivery_limit":
        error = (
            f"RabbitMQ gave up on it after {settings.MESSAGING_DELIVERY_LIMIT} deliveries on "
            f"{queue} (MESSAGING_DELIVERY_LIMIT) without an acknowledgement: the worker handling "
            "it died or lost its connection each time"
        )
        return DeadLetter.Reason.DELIVERY_LIMIT, error, queue
    return DeadLetter.Reason.BROKER, f"RabbitMQ dead-lettered it from {queue}: {cause}", queue

"""The metrics app's receivers of the backbone's signals (connected in MetricsConfig.ready).

Each adds to a counter and does nothing else: they run in the producer's
or the worker's path, after the fact, so they read no database and call no
server. A label value comes from the code (handler names, registered message
types, dead-letter reasons), never from what a message says, so that a
poison message cannot make new series: anything else is "unknown".
"""

from __future__ import annotations

import functools

from messaging.delivery import Outcome
from messaging.fanout import FANNED_OUT_TASK
from messaging.messages import registry as message_registry
from messaging.subscriptions import handler_named

from . import instruments

UNKNOWN = "unknown"


@functools.cache
def _known_types() -> frozenset[str]:
    # Every app's messages are registered once Django has set up (their
    # classes register themselves on import), before the first signal.
    return frozenset(message_class.message_type for message_class in message_registry)


def type_label(message_type: str | None) -> str:
    return message_type if message_type in _known_types() else UNKNOWN


def handler_label(name: str | None) -> str:
    if name and (name == FANNED_OUT_TASK or handler_named(name) is not None):
        return name
    return UNKNOWN


def count_published(sender, *, envelopes, **kwargs) -> None:
    for envelope in envelopes:
        instruments.messages_published.labels(envelope.type, envelope.kind).inc()


def count_confirmed(sender, *, envelopes, **kwargs) -> None:
    for envelope in envelopes:
        instruments.messages_confirmed.labels(envelope.type, envelope.kind).inc()


def count_delivery(sender, *, handler, envelope, outcome, seconds, **kwargs) -> None:
    message_type = envelope.type if envelope is not None else UNKNOWN
    instruments.deliveries.labels(handler, message_type, outcome).inc()
    if outcome == Outcome.HANDLED:
        instruments.handler_duration.labels(handler, message_type).observe(seconds)


def count_dead_letter(sender, *, dead_letter, **kwargs) -> None:
    instruments.dead_letters.labels(
        handler_label(dead_letter.handler),
        type_label(dead_letter.message_type),
        dead_letter.reason,
    ).inc()


def count_relay_run(sender, *, dispatched: int, failed: int, **kwargs) -> None:
    outcome = "failed" if failed else "sent" if dispatched else "idle"
    instruments.relay_runs.labels(outcome).inc()
    if dispatched:
        instruments.relay_messages.labels("dispatched").inc(dispatched)
    if failed:
        instruments.relay_messages.labels("failed").inc(failed)

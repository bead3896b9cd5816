"""The backbone's spans: a message recorded, sent, delivered and handled, on one trace.

Only OpenTelemetry's API is used here, as a library should: which provider
makes the spans, and where they go, is the application's choice (the
``tracing`` app). Until it switches tracing on (``tracing_switch``) every
function here does nothing and envelopes carry no trace context; with tracing
on and no exporter, the API's no-op tracer makes spans that cost next to
nothing.

The trace follows the message, not the Celery task: ``message_creating``
writes the context of the span that records a message into its envelope
(and so into its outbox row), and both its sending (``messages_sending``,
after commit or by the relay, in whichever process) and each of its
deliveries (``delivering``) start from that context. Inside a delivery the
handler's span is current, so what it publishes is a child of it. Code that
handles a message without a span of its own (the stream processors, inside
``messaging.context.handling``) still publishes on the trace of the message it
handles.

Span names and attributes follow OpenTelemetry's messaging conventions
(``create``, ``send`` and ``process`` spans, ``messaging.*`` attributes),
with the envelope's own ids beside them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from celery import current_app
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .broker_urls import is_amqp
from .messages import Envelope

_tracer = trace.get_tracer("eventshop.messaging")
# The envelope carries W3C trace context whatever OTEL_PROPAGATORS says:
# baggage is not ours to forward to every app.
_propagator = TraceContextTextMapPropagator()
_enabled = False

# Delivery outcomes (messaging.delivery.delivery_run) that mean the handler failed.
FAILED_OUTCOMES = {"retried", "dead-lettered"}


def tracing_switch(on: bool) -> None:
    """Trace the backbone's work from now on (``on``), or do nothing at all (the default)."""
    global _enabled
    _enabled = on


def is_tracing() -> bool:
    return _enabled


def trace_context(traceparent: str | None, tracestate: str | None = None) -> Context:
    """The context a stored ``traceparent`` names; empty (a new trace) without a valid one."""
    if not traceparent:
        return Context()
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier, context=Context())


def message_attributes(
    *, message_id: Any, kind: Any, type: Any, correlation_id: Any, causation_id: Any
) -> dict[str, str]:
    """A message's ids as span attributes (``messaging.*`` where a convention names one)."""
    attributes = {
        "messaging.system": _messaging_system(),
        "messaging.message.id": str(message_id),
        "messaging.message.conversation_id": str(correlation_id),
        "eventshop.message.type": str(type),
        "eventshop.message.kind": str(kind),
    }
    if causation_id:
        attributes["eventshop.message.causation_id"] = str(causation_id)
    return attributes


@functools.cache
def _messaging_system() -> str:
    url = current_app.conf.broker_url or ""
    return "rabbitmq" if is_amqp(url) else url.partition(":")[0] or "kombu"


def _envelope_attributes(envelope: Envelope) -> dict[str, str]:
    return message_attributes(
        message_id=envelope.message_id,
        kind=envelope.kind,
        type=envelope.type,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
    )


@contextmanager
def message_creating(
    *,
    message_id: Any,
    kind: str,
    type: str,
    correlation_id: str,
    causation_id: Any,
    cause: Envelope | None,
) -> Iterator[dict[str, str]]:
    """A ``create <type>`` span around recording a message; yields its envelope's trace context.

    Its parent is the current span (the request's, or the handler's), or,
    where none is, the trace context of the envelope being handled.
    """
    if not _enabled:
        yield {}
        return
    parent = None
    in_span = trace.get_current_span().get_span_context().is_valid
    if cause is not None and cause.traceparent and not in_span:
        parent = trace_context(cause.traceparent, cause.tracestate)
    with _tracer.start_as_current_span(
        f"create {type}", context=parent, kind=SpanKind.PRODUCER
    ) as span:
        if span.is_recording():
            span.set_attributes(
                message_attributes(
                    message_id=message_id,
                    kind=kind,
                    type=type,
                    correlation_id=correlation_id,
                    causation_id=causation_id,
                )
            )
            span.set_attribute("messaging.operation.type", "create")
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        yield carrier


@contextmanager
def messages_sending(destinations: list[tuple[Envelope, list[str]]]) -> Iterator[None]:
    """A ``send <type>`` span per message, each on its message's trace, around one batch.

    ``destinations`` pairs each envelope with the queues it goes to. The
    batch is published and confirmed as one, so each span lasts the whole
    batch; should it fail, each records the error. A message recorded without
    a trace context gets no span.
    """
    traced = [(e, queues) for e, queues in destinations if e.traceparent] if _enabled else []
    if not traced:
        yield
        return
    start = time.time_ns()
    spans = []
    for envelope, queues in traced:
        span = _tracer.start_span(
            f"send {envelope.type}",
            context=trace_context(envelope.traceparent, envelope.tracestate),
            kind=SpanKind.PRODUCER,
            start_time=start,
        )
        if span.is_recording():
            span.set_attributes(_envelope_attributes(envelope))
            span.set_attributes(
                {
                    "messaging.operation.type": "send",
                    "messaging.batch.message_count": len(traced),
                    "messaging.destination.name": ",".join(queues),
                }
            )
        spans.append(span)
    try:
        yield
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        end = time.time_ns()
        for span in spans:
            span.end(end_time=end)


@contextmanager
def delivering(*, handler_name: str, queue: str, data: Any, retries: int) -> Iterator[trace.Span]:
    """A ``process <type>`` span around one delivery, on the trace its envelope names.

    ``data`` is the envelope as it arrived, not yet read: a delivery whose
    envelope turns out unreadable is traced too, on a trace of its own. Set
    its outcome with ``delivery_outcome``.
    """
    if not _enabled:
        yield trace.INVALID_SPAN
        return
    wire: Mapping = data if isinstance(data, Mapping) else {}
    traceparent, tracestate = wire.get("traceparent"), wire.get("tracestate")
    context = trace_context(
        traceparent if isinstance(traceparent, str) else None,
        tracestate if isinstance(tracestate, str) else None,
    )
    message_type = wire.get("type")
    name = f"process {message_type}" if isinstance(message_type, str) else "process message"
    with _tracer.start_as_current_span(name[:120], context=context, kind=SpanKind.CONSUMER) as span:
        if span.is_recording():
            span.set_attributes(
                message_attributes(
                    message_id=wire.get("message_id"),
                    kind=wire.get("kind"),
                    type=message_type,
                    correlation_id=wire.get("correlation_id"),
                    causation_id=wire.get("causation_id"),
                )
            )
            span.set_attributes(
                {
                    "messaging.operation.type": "process",
                    "messaging.destination.name": queue,
                    "eventshop.handler": handler_name,
                    "eventshop.delivery.attempt": retries + 1,
                }
            )
        yield span


def delivery_outcome(span: trace.Span, outcome: str) -> None:
    """What became of a delivery: handled, duplicate, retried, dead-lettered, ..."""
    if not span.is_recording():
        return
    span.set_attribute("eventshop.delivery.outcome", outcome)
    if outcome in FAILED_OUTCOMES:
        span.set_status(Status(StatusCode.ERROR, outcome))


@contextmanager
def handler_running(handler_name: str) -> Iterator[None]:
    """A ``handle <handler>`` span around the handler's own code (inside its transaction)."""
    if not _enabled:
        yield
        return
    with _tracer.start_as_current_span(f"handle {handler_name}") as span:
        if span.is_recording():
            span.set_attribute("eventshop.handler", handler_name)
        yield

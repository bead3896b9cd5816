"""The backbone's spans, in this process, with an in-memory exporter.

A message's trace context travels in its envelope and its outbox row: its
sending (after commit, or by the relay much later) and each delivery start
from it, and what a handler publishes is a child of the handler's span. Old
envelopes without it stay readable, and with tracing off nothing is added.
The same across real worker processes: tests/flow/test_tracing.py.
"""

import time

import pytest
from django.db import transaction
from opentelemetry import context as otel_context
from opentelemetry import trace

from messaging import publishing, spans
from messaging.context import handling
from messaging.delivery import delivery_run
from messaging.messages import envelope_read
from messaging.models import OutboxMessage
from messaging.publishing import publish
from messaging.relay import outbox_relay
from messaging.subscriptions import Handler
from tests.probe.events import ProbeEchoed, ProbePinged
from tests.support.broker import purge_queues
from tests.support.envelopes import envelope_of
from tests.support.probes import new_probe_id
from tests.support.tracing import SpanRecord, in_memory_spans, records

pytestmark = pytest.mark.django_db(transaction=True)

tracer = trace.get_tracer("tests")


def _echo(message: ProbePinged, envelope) -> None:
    # Its own probe id: the probe workers, if running, echo the same ping too.
    publish(ProbeEchoed(probe_id=f"{message.probe_id}:traced"))


def _fail(message, envelope) -> None:
    raise RuntimeError("the handler fails")


echoing = Handler(_echo, (ProbePinged,), "probe_a", "probe.trace_echo")
recording = Handler(lambda message, envelope: None, (ProbeEchoed,), "probe_a", "probe.trace_record")
failing = Handler(_fail, (ProbePinged,), "probe_a", "probe.trace_fail")


@pytest.fixture
def exported(rabbitmq):
    """This process's spans, the backbone's tracing on (as the tracing app leaves it);
    what the test published to the probe queues goes afterwards."""
    was_on = spans.is_tracing()
    spans.tracing_switch(True)
    try:
        with in_memory_spans() as exporter:
            yield exporter
    finally:
        spans.tracing_switch(was_on)
        purge_queues(["probe_a", "probe_b"])


def deliver(handler: Handler, row: OutboxMessage, retries: int = 0) -> str:
    """One delivery of the outbox row's message, as a worker's task runs it."""
    wire = row.to_envelope().to_wire()
    return delivery_run(handler=handler, args=(), kwargs={"envelope": wire}, retries=retries)


def one(found: list[SpanRecord], name: str) -> SpanRecord:
    matching = [span for span in found if span.name == name]
    assert len(matching) == 1, f"{name}: {[s.name for s in found]}"
    return matching[0]


def names_span(traceparent: str | None, span: SpanRecord) -> bool:
    """Whether a W3C traceparent names this span (whatever its flags)."""
    return (traceparent or "").startswith(f"00-{span.trace_id}-{span.span_id}-")


def test_an_envelope_without_trace_context_reads_and_its_wire_form_is_unchanged():
    # Given an envelope as written before there was trace context
    wire = envelope_of(ProbePinged(probe_id=new_probe_id())).to_wire()

    # Then it has none on the wire, and reads back as one without it
    assert "traceparent" not in wire and "tracestate" not in wire
    envelope = envelope_read(wire)
    assert (envelope.traceparent, envelope.tracestate) == (None, None)
    # And a malformed one is no reason to refuse a message: it starts a new trace
    odd = envelope_read({**wire, "traceparent": "not a traceparent"})
    assert not trace.get_current_span(spans.trace_context(odd.traceparent)).is_recording()


def test_a_publish_is_a_create_span_whose_context_the_envelope_and_its_row_keep(exported):
    # When a message is published inside a request's span
    with tracer.start_as_current_span("POST /api/orders/") as request, transaction.atomic():
        envelope = publish(ProbePinged(probe_id=new_probe_id()))

    # Then its recording is a span under the request's, with the message's ids
    found = records(exported)
    create = one(found, "create ProbePinged")
    assert create.parent_id == f"{request.get_span_context().span_id:016x}"
    assert create.kind == "PRODUCER"
    assert create.attributes["messaging.message.id"] == str(envelope.message_id)
    assert create.attributes["messaging.message.conversation_id"] == envelope.correlation_id
    assert create.attributes["eventshop.message.type"] == "ProbePinged"
    assert create.attributes["messaging.system"] == "rabbitmq"
    # And the envelope, and the outbox row it was written to, carry that span's context
    assert names_span(envelope.traceparent, create)
    row = OutboxMessage.objects.get(message_id=envelope.message_id)
    assert row.traceparent == envelope.traceparent
    # And its sending after the commit is a child of it, to the queues of its subscribers
    send = one(found, "send ProbePinged")
    assert (send.trace_id, send.parent_id) == (create.trace_id, create.span_id)
    assert send.start >= create.end
    assert "probe_a" in send.attributes["messaging.destination.name"]


def test_the_relay_sends_a_message_later_on_the_trace_of_its_publish(exported, monkeypatch):
    # Given a message committed while the dispatch after commit was paused (the broker failed)
    monkeypatch.setattr(publishing, "_dispatch_paused_until", time.monotonic() + 60)
    with tracer.start_as_current_span("request"), transaction.atomic():
        envelope = publish(ProbePinged(probe_id=new_probe_id()))
    assert not OutboxMessage.objects.get(message_id=envelope.message_id).is_dispatched

    # When the relay sends it, from another context altogether (another process, for all it knows)
    token = otel_context.attach(otel_context.Context())
    try:
        assert outbox_relay(grace_seconds=0).dispatched == 1
    finally:
        otel_context.detach(token)

    # Then its send span is a child of the span that recorded it, read from the outbox row
    found = records(exported)
    create, send = one(found, "create ProbePinged"), one(found, "send ProbePinged")
    assert (send.trace_id, send.parent_id) == (create.trace_id, create.span_id)
    assert send.attributes["messaging.message.id"] == str(envelope.message_id)


def test_a_delivery_and_its_handler_are_spans_of_the_trace_and_what_it_publishes_follows(
    exported,
):
    # Given a message published inside a span
    with tracer.start_as_current_span("request"), transaction.atomic():
        probe_id = new_probe_id()
        pinged = publish(ProbePinged(probe_id=probe_id))

    # When a handler takes it and publishes another, which a second handler takes
    assert deliver(echoing, OutboxMessage.objects.get(message_id=pinged.message_id)) == "handled"
    echoed = OutboxMessage.objects.get(payload__probe_id=f"{probe_id}:traced")
    assert deliver(recording, echoed) == "handled"

    # Then every hop is a span of the one trace, each the child of its cause
    found = records(exported)
    assert len({span.trace_id for span in found}) == 1
    request = one(found, "request")
    create_pinged = one(found, "create ProbePinged")
    process_pinged = one(found, "process ProbePinged")
    handle_echo = one(found, "handle probe.trace_echo")
    create_echoed = one(found, "create ProbeEchoed")
    send_echoed = one(found, "send ProbeEchoed")
    process_echoed = one(found, "process ProbeEchoed")
    handle_record = one(found, "handle probe.trace_record")
    chain = [
        (request, create_pinged),
        (create_pinged, process_pinged),
        (process_pinged, handle_echo),
        (handle_echo, create_echoed),
        (create_echoed, send_echoed),
        (create_echoed, process_echoed),
        (process_echoed, handle_record),
    ]
    for parent, child in chain:
        assert child.parent_id == parent.span_id, f"{child.name} is not under {parent.name}"
        assert child.start >= parent.start, f"{child.name} started before {parent.name}"
    # And each delivery names its message, its handler, its queue and what became of it
    assert process_pinged.kind == "CONSUMER"
    assert process_pinged.attributes["messaging.message.id"] == str(pinged.message_id)
    assert process_pinged.attributes["eventshop.handler"] == "probe.trace_echo"
    assert process_pinged.attributes["messaging.destination.name"] == "probe_a"
    assert process_pinged.attributes["eventshop.delivery.outcome"] == "handled"
    assert process_echoed.attributes["eventshop.message.causation_id"] == str(pinged.message_id)
    assert names_span(echoed.traceparent, create_echoed)


def test_a_failed_delivery_says_so_with_its_error(exported):
    # Given a message whose handler fails
    with tracer.start_as_current_span("request"), transaction.atomic():
        envelope = publish(ProbePinged(probe_id=new_probe_id()))

    # When it is delivered, and retried
    outcome = deliver(failing, OutboxMessage.objects.get(message_id=envelope.message_id))

    # Then the handler's span holds the error, the delivery's its outcome
    assert outcome == "retried"
    found = records(exported)
    handle, process = one(found, "handle probe.trace_fail"), one(found, "process ProbePinged")
    assert handle.is_error and "exception" in handle.events
    assert process.is_error
    assert process.attributes["eventshop.delivery.outcome"] == "retried"
    assert process.attributes["eventshop.delivery.attempt"] == 1


def test_handling_without_a_span_of_its_own_publishes_on_the_handled_message_trace(exported):
    # Given a message that arrived with a trace context (as a stream processor reads one)
    with tracer.start_as_current_span("upstream") as upstream:
        parent = upstream.get_span_context()
    arrived = envelope_of(ProbePinged(probe_id=new_probe_id())).model_copy(
        update={"traceparent": f"00-{parent.trace_id:032x}-{parent.span_id:016x}-01"}
    )

    # When what handles it publishes, with no span of its own
    with transaction.atomic(), handling(arrived):
        publish(ProbeEchoed(probe_id="x"))

    # Then the new message's span is a child of the one that sent the handled message
    create = one(records(exported), "create ProbeEchoed")
    assert create.trace_id == f"{parent.trace_id:032x}"
    assert create.parent_id == f"{parent.span_id:016x}"


def test_with_tracing_off_there_are_no_spans_and_no_trace_context(exported):
    spans.tracing_switch(False)
    try:
        # When a message is published and delivered with tracing off
        with tracer.start_as_current_span("request"), transaction.atomic():
            envelope = publish(ProbePinged(probe_id=new_probe_id()))
        deliver(echoing, OutboxMessage.objects.get(message_id=envelope.message_id))
    finally:
        spans.tracing_switch(True)

    # Then its envelope, its wire form and its row carry nothing, and the backbone made no span
    assert envelope.traceparent is None and "traceparent" not in envelope.to_wire()
    assert OutboxMessage.objects.get(message_id=envelope.message_id).traceparent is None
    assert [span.name for span in records(exported)] == ["request"]

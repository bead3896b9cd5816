"""One order is one trace, across the web and every app's worker, under both workflows.

The test process is the web: its request, the outbox writes and the sends
after commit go to an in-memory exporter. Each app runs in a worker process
of its own (the regular ones are held off their queues meanwhile), started as
in production with OTEL_EXPORTER_OTLP_ENDPOINT: they export by OTLP/HTTP to a
collector of the test's own (tests/support/tracing.py). Read together, every
message of the order is a 'create' span, a 'send' span and, for each handler
it goes to, a 'process' span (in that handler's worker) with a 'handle' span
inside: all on the request's trace, each the child of its cause, none
starting before its parent.
"""

import contextlib
from collections import defaultdict

import pytest

from messaging.models import OutboxMessage
from messaging.subscriptions import subscribers
from tests.flow.conftest import order_body, wait_until_closed
from tests.support.tracing import OtlpReceiver, SpanRecord, in_memory_spans, records
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.workers import APP_QUEUES, WorkerProcess, consumer_paused, workers_stop

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(scope="module")
def collector():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def exported():
    with in_memory_spans() as exporter:
        yield exporter


@pytest.fixture
def traced_workers(app_workers, collector):
    """Each app's worker again, exporting its spans to the collector, alone on its queue."""
    started = {}
    with contextlib.ExitStack() as stack:
        try:
            for queue in APP_QUEUES:
                env = {
                    **app_workers[queue].env,
                    "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                    "OTEL_SERVICE_NAME": f"eventshop-{queue}",
                    "OTEL_BSP_SCHEDULE_DELAY": "100",
                    # SQL spans too, to show the instrumentation works with Django's backend.
                    "TRACING_SQL": "1",
                }
                started[queue] = WorkerProcess(f"traced-{queue}", [queue], env, 1)
            for worker in started.values():
                worker.wait_ready()
            for queue in APP_QUEUES:
                stack.enter_context(consumer_paused(app_workers[queue], queue))
            yield started
            wait_until_quiet(APP_QUEUES)
        finally:
            workers_stop(started)


def by_message(spans: list[SpanRecord], name: str) -> dict[str, list[SpanRecord]]:
    found = defaultdict(list)
    for span in spans:
        if span.name.startswith(f"{name} ") and "messaging.message.id" in span.attributes:
            found[span.attributes["messaging.message.id"]].append(span)
    return found


@pytest.mark.parametrize("workflow", ["choreography", "orchestration"])
def test_one_order_is_one_trace_whose_spans_cover_every_hop_in_causal_order(
    client, stock, traced_workers, collector, exported, workflow
):
    sku = stock(on_hand=5)

    # When an order is placed through the API and runs to its end
    response = client.post(
        "/api/orders/",
        order_body(items=[(sku, 1)], workflow=workflow),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    order_id = response.json()["id"]
    assert wait_until_closed(order_id).status == "completed"

    # Then every message of the order, and every delivery of each, shows up as spans
    messages = list(OutboxMessage.objects.filter(correlation_id=order_id).order_by("id"))
    deliveries = [(row, handler) for row in messages for handler in subscribers(row.to_envelope())]
    assert len(deliveries) > len(messages) >= 5

    def spans() -> list[SpanRecord]:
        return records(exported) + collector.received()

    def every_hop_seen() -> bool:
        found = spans()
        created, sent = by_message(found, "create"), by_message(found, "send")
        processed = {
            (s.attributes["messaging.message.id"], s.attributes["eventshop.handler"])
            for s in found
            if s.name.startswith("process ") and s.attributes.get("eventshop.handler")
        }
        return all(str(row.message_id) in created and str(row.message_id) in sent
                   for row in messages) and all(
            (str(row.message_id), handler.name) in processed for row, handler in deliveries
        )  # fmt: skip

    wait_for(every_hop_seen, timeout=30, what="a span for every hop of the order")
    found = spans()
    by_id = {span.span_id: span for span in found}
    (request,) = [s for s in found if s.kind == "SERVER" and s.name == "POST api/orders/"]
    trace = [span for span in found if span.trace_id == request.trace_id]
    created, sent, processed = (by_message(found, n) for n in ("create", "send", "process"))

    def parent(span: SpanRecord) -> SpanRecord:
        assert span.parent_id in by_id, f"{span.name}'s parent is not among the spans"
        above = by_id[span.parent_id]
        assert span.start >= above.start, f"{span.name} started before its parent {above.name}"
        return above

    for row in messages:
        message_id = str(row.message_id)
        (create,) = created[message_id]
        # One trace: every span of every message is on the request's
        assert create.trace_id == request.trace_id, f"{row.type} is on a trace of its own"
        assert row.traceparent.startswith(f"00-{create.trace_id}-{create.span_id}-")
        # Recorded by the request itself, or by the handler of the message that caused it
        cause = parent(create)
        if row.causation_id is None:
            assert cause is request
        else:
            assert cause.name.startswith("handle ")
            delivery = parent(cause)
            assert delivery.attributes["messaging.message.id"] == str(row.causation_id)
        # Sent after its commit, on its trace
        for send in sent[message_id]:
            assert parent(send) is create and send.start >= create.end
        # And delivered, after its commit, to each of its handlers in that handler's worker
        for process in processed[message_id]:
            assert parent(process) is create and process.start >= create.end
            assert process.kind == "CONSUMER"
            queue = process.attributes["messaging.destination.name"]
            assert process.service == f"eventshop-{queue}"
    for row, handler in deliveries:
        attempts = [
            p for p in processed[str(row.message_id)]
            if p.attributes["eventshop.handler"] == handler.name
        ]  # fmt: skip
        outcomes = [p.attributes["eventshop.delivery.outcome"] for p in attempts]
        assert "handled" in outcomes, f"{handler.name} on {row.type}: {outcomes}"
        handles = [s for s in trace if s.name == f"handle {handler.name}"]
        assert any(parent(h) in attempts for h in handles), f"no handler span of {handler.name}"

    # And the trace crossed processes: the web's and each app's worker's
    assert {span.service for span in trace} >= {f"eventshop-{q}" for q in APP_QUEUES}
    assert len({span.pid for span in trace if span.pid}) >= len(APP_QUEUES)
    # And each worker traced from its pool process alone, set up after the fork
    for worker in traced_workers.values():
        setups = [line for line in worker.lines if "exports its spans by otlp" in line]
        assert setups and all("ForkPoolWorker" in line for line in setups), setups
    # And the workers' SQL is on it, under the spans that ran it
    statements = [s for s in trace if s.kind == "CLIENT" and s.service.startswith("eventshop-")]
    assert statements and all(parent(s).trace_id == request.trace_id for s in statements)

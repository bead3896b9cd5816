"""Spans as the tests read them: this process's in memory, other processes' by OTLP.

``in_memory_spans()`` gives this process an SDK tracer provider whose spans go
to an ``InMemorySpanExporter`` (the global provider can be set only once per
process: it stays for the session, recording only while a test holds an
exporter, so that other tests run as with no exporter at all).
``OtlpReceiver`` is a collector of the test's own, a few lines of
``http.server`` that decode OTLP/HTTP protobuf with the opentelemetry-proto
package: worker processes started with ``OTEL_EXPORTER_OTLP_ENDPOINT`` at it
export their spans there, through the exporter they use in production.
Both give ``SpanRecord``, so that one trace can be read across processes.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass(frozen=True)
class SpanRecord:
    """A finished span, wherever it was made."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER or INTERNAL
    start: int  # ns since the epoch
    end: int
    attributes: dict[str, Any] = field(default_factory=dict)
    service: str = ""
    pid: int | None = None
    is_error: bool = False
    events: tuple[str, ...] = ()

    @classmethod
    def of(cls, span: ReadableSpan) -> SpanRecord:
        resource = dict(span.resource.attributes) if span.resource else {}
        return cls(
            name=span.name,
            trace_id=f"{span.context.trace_id:032x}",
            span_id=f"{span.context.span_id:016x}",
            parent_id=f"{span.parent.span_id:016x}" if span.parent else None,
            kind=span.kind.name,
            start=span.start_time or 0,
            end=span.end_time or 0,
            attributes=dict(span.attributes or {}),
            service=str(resource.get("service.name", "")),
            pid=resource.get("process.pid"),
            is_error=span.status.status_code.name == "ERROR",
            events=tuple(event.name for event in span.events),
        )


class _Forwarding(SpanProcessor):
    """Hands each finished span to the exporter of the test holding it, if any."""

    def __init__(self) -> None:
        self.exporter: InMemorySpanExporter | None = None

    def on_end(self, span: ReadableSpan) -> None:
        exporter = self.exporter
        if exporter is not None:
            exporter.export((span,))


class _SwitchedTracer(trace.Tracer):
    """The SDK's tracer while a test holds the exporter, else the API's no-op one.

    Outside such a test the process traces as by default (no exporter): no
    span is recorded and no trace context goes into envelopes.
    """

    def __init__(self, sdk_tracer: trace.Tracer, forwarding: _Forwarding) -> None:
        self._sdk = sdk_tracer
        self._forwarding = forwarding
        self._noop = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        return self._sdk if self._forwarding.exporter is not None else self._noop

    def start_span(self, *args, **kwargs):
        return self._current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args, **kwargs):
        return self._current().start_as_current_span(*args, **kwargs)


class _SwitchedProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.forwarding = _Forwarding()
        self.sdk = TracerProvider()
        self.sdk.add_span_processor(self.forwarding)

    def get_tracer(self, *args, **kwargs) -> trace.Tracer:
        return _SwitchedTracer(self.sdk.get_tracer(*args, **kwargs), self.forwarding)


_provider: _SwitchedProvider | None = None


@contextlib.contextmanager
def in_memory_spans() -> Iterator[InMemorySpanExporter]:
    """This process's spans, from now until the block ends, in an InMemorySpanExporter."""
    global _provider
    if _provider is None:
        provider = _SwitchedProvider()
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:
            raise RuntimeError("this process already has a tracer provider (OTEL_* variables?)")
        _provider = provider
    exporter = InMemorySpanExporter()
    _provider.forwarding.exporter = exporter
    try:
        yield exporter
    finally:
        _provider.forwarding.exporter = None


def records(exporter: InMemorySpanExporter) -> list[SpanRecord]:
    return [SpanRecord.of(span) for span in exporter.get_finished_spans()]


# --- OTLP/HTTP -------------------------------------------------------------

_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _value(any_value) -> Any:
    which = any_value.WhichOneof("value")
    return getattr(any_value, which) if which else None


def _attributes(key_values) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def decode_export(body: bytes) -> list[SpanRecord]:
    """The spans of one OTLP/HTTP protobuf export request."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    found = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    SpanRecord(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        kind=_KINDS.get(span.kind, "UNSPECIFIED"),
                        start=span.start_time_unix_nano,
                        end=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        service=str(resource.get("service.name", "")),
                        pid=resource.get("process.pid"),
                        is_error=span.status.code == 2,  # STATUS_CODE_ERROR
                        events=tuple(event.name for event in span.events),
                    )
                )
    return found


class OtlpReceiver:
    """An OTLP/HTTP collector on 127.0.0.1 that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_error(404)
                    return
                spans = decode_export(body)
                with receiver._lock:
                    receiver.spans.extend(spans)
                    receiver.requests += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[SpanRecord]:
        with self._lock:
            return list(self.spans)

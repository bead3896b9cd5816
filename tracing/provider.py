"""The process's tracer provider: where spans go, chosen by the standard OTEL_* variables.

Set up once per process: the web server's from ``TracingConfig.ready()`` (a
gunicorn worker imports the application after its fork), a command's the
same way, and a Celery worker's in each pool process (``tracing.receivers``):
a ``BatchSpanProcessor`` exports from a thread of its own and holds an HTTP
connection, neither of which should be made before the fork that would copy
them into every child.

Which exporter: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``,
comma-separated), else ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, else none. (The specification's
default is ``otlp``; here nothing is sent unless asked for.) Without one
nothing is instrumented unless TRACING_ENABLED=1 asks for it, and then no SDK
provider is set up: the API's no-op tracer makes every span. The SDK and the
exporter read everything else themselves:
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout,
compression).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from celery import current_app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from opentelemetry import trace

logger = logging.getLogger(__name__)

EXPORTERS = ("otlp", "console", "none")
# The one OTLP protocol whose exporter is installed.
OTLP_PROTOCOL = "http/protobuf"
DEFAULT_SERVICE_NAME = "eventshop"

_provider = None


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters the environment asks for (none unless it asks)."""
    value = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not value:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise ImproperlyConfigured(
            f"OTEL_TRACES_EXPORTER={value!r}: {', '.join(unknown)} is not one of "
            f"{', '.join(EXPORTERS)}"
        )
    if "otlp" in names:
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", OTLP_PROTOCOL
        )
        if protocol != OTLP_PROTOCOL:
            raise ImproperlyConfigured(
                f"OTLP over {protocol!r} is not installed: only {OTLP_PROTOCOL!r} is"
            )
    return [name for name in names if name != "none"]


def tracing_active() -> bool:
    """Whether this process traces: as TRACING_ENABLED says, else when an exporter is named."""
    if settings.TRACING_ENABLED is not None:
        return settings.TRACING_ENABLED
    return bool(exporter_names())


def _is_worker_main_process() -> bool:
    # Celery's worker (and beat) marks its loader initialised before the
    # Django fixup sets Django up, so this holds when ready() runs there.
    return bool(getattr(current_app.loader, "worker_initialized", False))


def tracing_setup(*, in_pool: bool = False):
    """Set up this process's tracer provider, once; returns it, or None (nothing exported).

    A Celery worker's main process (or beat) makes none: each of its pool
    processes calls this with ``in_pool`` once forked.
    """
    global _provider
    if _provider is not None or not tracing_active():
        return _provider
    if not in_pool and _is_worker_main_process():
        return None
    names = exporter_names()
    if not names:
        return None
    # The SDK is imported only where spans are exported.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"process.pid": os.getpid()})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    _provider = provider
    if settings.TRACING_SQL:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument(skip_dep_check=True)
    logger.info("Tracing: process %s exports its spans by %s", os.getpid(), ", ".join(names))
    return provider


def _exporter(name: str):
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracing_shutdown() -> None:
    """Export what is still buffered and stop (a pool process that is about to exit)."""
    if _provider is not None:
        _provider.shutdown()

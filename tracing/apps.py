from django.apps import AppConfig

# Requests that say nothing about an order: probes, scrapes and static files.
EXCLUDED_URLS = "/healthz$,/readyz$,/metrics$,/static/,/favicon.ico$"


class TracingConfig(AppConfig):
    name = "tracing"
    verbose_name = "Tracing: OpenTelemetry spans across every hop"

    def ready(self) -> None:
        from .provider import tracing_active, tracing_setup

        # Spans that nobody receives are not made: without an exporter (and
        # without TRACING_ENABLED=1) nothing is instrumented.
        if not tracing_active():
            return
        import os

        from opentelemetry.instrumentation.django import DjangoInstrumentor

        from messaging.spans import tracing_switch

        from .receivers import connect_backbone

        # The request's span, made by the ecosystem's middleware (it goes first
        # in MIDDLEWARE), is the parent of everything the request publishes.
        DjangoInstrumentor().instrument(
            excluded_urls=os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", EXCLUDED_URLS)
        )
        tracing_switch(True)
        connect_backbone()
        tracing_setup()

"""OpenTelemetry for the whole shop: one trace per order, across every process and hop.

The backbone makes its spans with the API alone (``messaging.spans``); this
app is where the application chooses what happens to them: the tracer
provider and its exporter (``tracing.provider``), the web requests' spans
(opentelemetry-instrumentation-django) and, when spans are exported, SQL's
(opentelemetry-instrumentation-psycopg). The README's "Tracing" says what is
traced and how to send it to a collector.
"""

"""Where spans go: chosen by the standard OTEL_* variables, nowhere unless asked."""

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.support.paths import ROOT
from tracing.provider import exporter_names


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console, otlp"}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
    ],
)
def test_the_exporters_are_those_the_environment_asks_for(environ, names):
    assert exporter_names(environ) == names


@pytest.mark.parametrize(
    ("environ", "error"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin is not one of otlp, console, none"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTLP over 'grpc' is not installed",
        ),
    ],
)
def test_an_exporter_that_is_not_there_stops_the_process_saying_so(environ, error):
    with pytest.raises(ImproperlyConfigured, match=error):
        exporter_names(environ)


def run_django(code: str, **environ: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh process with Django set up, as a command would run it."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.base", **environ},
    )  # fmt: skip


def test_a_process_with_an_exporter_sends_its_spans_there_and_names_itself():
    # When a process set up with the console exporter makes a span, then exits
    done = run_django(
        "from opentelemetry import trace\ntrace.get_tracer('test').start_span('hello').end()",
        OTEL_TRACES_EXPORTER="console",
    )

    # Then the span was written out before it exited, under the shop's service name
    span = json.loads(done.stdout[done.stdout.index("{") :])
    assert span["name"] == "hello"
    assert span["resource"]["attributes"]["service.name"] == "eventshop"


@pytest.mark.parametrize(
    ("environ", "instrumented"),
    [
        ({}, False),  # the default: no exporter, so nothing to trace for
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, True),
        ({"TRACING_ENABLED": "1"}, True),  # the no-op tracer's path
        ({"TRACING_ENABLED": "0", "OTEL_TRACES_EXPORTER": "console"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, False),
    ],
)
def test_a_process_is_instrumented_when_it_has_an_exporter_or_is_told_to(environ, instrumented):
    done = run_django(
        "from django.conf import settings\n"
        "from messaging.spans import is_tracing\n"
        "print(is_tracing(), any('opentelemetry' in m for m in settings.MIDDLEWARE))",
        **environ,
    )
    assert done.stdout.split() == [str(instrumented)] * 2

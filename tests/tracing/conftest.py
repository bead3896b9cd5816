import pytest

from tests.support.tracing import in_memory_spans


@pytest.fixture
def exported():
    """This process's spans (the tracing app switched the backbone's on: TRACING_ENABLED)."""
    with in_memory_spans() as exporter:
        yield exporter

"""The analytics unit tests read the log from the outbox table: no broker, no stream.

The real-process tests (test_stream_processor.py) put products on sale as the
order flow's tests do, with the flow's ``stock`` and ``stale_catalog`` fixtures.
"""

import pytest

from tests.flow.conftest import stale_catalog, stock  # noqa: F401


@pytest.fixture
def table_log(settings, monkeypatch):
    settings.EVENT_LOG_BACKEND = "database"
    # What a processor emits stays in the outbox: nothing goes to a broker.
    monkeypatch.setattr("messaging.outbox.transport.send", lambda copies: None)

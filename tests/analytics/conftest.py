"""The analytics unit tests read the log from the outbox table: no broker, no stream."""

import pytest


@pytest.fixture
def table_log(settings, monkeypatch):
    settings.EVENT_LOG_BACKEND = "database"
    # What a processor emits stays in the outbox: nothing goes to a broker.
    monkeypatch.setattr("messaging.outbox.transport.send", lambda copies: None)

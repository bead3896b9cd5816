"""GET /metrics on the web: the counters and the gauges, in the text format Prometheus reads."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db


def test_metrics_answers_what_prometheus_reads(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "eventshop_deliveries",
        "eventshop_messages_published",
        "eventshop_handler_duration_seconds",
        "eventshop_outbox_pending_messages",
        "eventshop_sagas",
        "eventshop_scrape_collector_success",
    } <= names


def test_metrics_off_answer_not_found(client, settings):
    settings.METRICS_ENABLED = False

    assert client.get("/metrics").status_code == 404


def test_only_get(client):
    assert client.post("/metrics").status_code == 405

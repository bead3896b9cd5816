"""The dashboard's pages: staff only, figures embedded, the staff stream when there is Redis."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core import signing
from django.test import Client

from live import tokens

pytestmark = pytest.mark.django_db

PAGES = ["/staff/live/", "/staff/live/figures.json"]


@pytest.fixture
def customer() -> Client:
    user = get_user_model().objects.create_user("customer", "c@example.com", "pw-123456")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff() -> tuple[Client, object]:
    user = get_user_model().objects.create_user("operator", "o@example.com", "pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture(autouse=True)
def _no_broker_asked(monkeypatch):
    """The pages' tests read no queue depths: a broker that answers nothing."""
    from tests.live.stub_broker import StubProbe

    monkeypatch.setattr("live.dashboard.default_probe", StubProbe())


@pytest.mark.parametrize("page", PAGES)
def test_anyone_but_staff_is_sent_to_the_admin_login(client, customer, page):
    for visitor in (client, customer):
        response = visitor.get(page)

        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={page}"


def embedded(response, element_id: str):
    found = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert found, f"no #{element_id} in the page"
    return json.loads(found.group(1))


def test_staff_get_the_dashboard_with_its_figures_and_no_stream_without_redis(settings, staff):
    settings.REDIS_URL = ""
    client, _ = staff

    response = client.get("/staff/live/")

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    snapshot = embedded(response, "live-snapshot")
    assert set(snapshot) >= {"business", "queues", "outbox", "sagas", "stuck_orders", "fraud"}
    config = embedded(response, "live-config")
    assert config["stream_url"] is None
    assert config["figures_url"] == "/staff/live/figures.json"
    assert "vendor/chart.js/chart.umd.js" in response.content.decode()


def test_with_redis_the_page_opens_the_staff_stream_with_a_ticket_of_its_user(settings, staff):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.LIVE_STREAM_URL = "http://127.0.0.1:8001"
    client, user = staff

    config = embedded(client.get("/staff/live/"), "live-config")

    url = urlsplit(config["stream_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://127.0.0.1:8001/live/staff/stream"
    (ticket,) = parse_qs(url.query)["ticket"]
    assert signing.loads(ticket, salt=tokens.SALT, max_age=tokens.MAX_AGE) == {"user": user.pk}


def test_staff_get_the_figures_as_json(staff):
    client, _ = staff

    response = client.get("/staff/live/figures.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    figures = response.json()
    assert figures["queues"]["rows"][0]["depth"] == 3
    assert "no-cache" in response["Cache-Control"]


def test_the_chart_library_is_the_npm_packages_as_a_static_file():
    # What runserver, whitenoise's finders and collectstatic all find
    found = finders.find("vendor/chart.js/chart.umd.js")

    assert found is not None, "node_modules is missing: make install runs npm ci"
    assert "node_modules/chart.js/dist" in found
    assert "Chart.js v4.6.1" in Path(found).read_text()[:200]

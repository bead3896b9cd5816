"""The dashboard in a real Chromium, on a staff stream that pushes, fails and comes back.

The streaming server is a stand-in (tests/live/sse_stub.py) speaking the real
one's events; the figures the page fetches when the stream fails are the
database's, through figures.json.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from live import tokens
from live.dashboard import snapshot
from tests.live.sse_stub import StaffStreamStub
from tests.live.stub_broker import StubProbe
from tests.support.browser import admin_login

pytestmark = pytest.mark.django_db(transaction=True)

TIMER_TEXT = "Live updates unavailable: refreshing every 5 s"


@pytest.fixture
def stream(settings, monkeypatch) -> Iterator[StaffStreamStub]:
    stub = StaffStreamStub().start()
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.LIVE_STREAM_URL = stub.url
    monkeypatch.setattr("live.dashboard.default_probe", StubProbe())
    yield stub
    stub.stop()


def shown(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def feed_items(browser) -> list:
    return browser.find_elements(By.CSS_SELECTOR, "#feed li")


def status_is(text: str):
    return lambda browser: shown(browser, "live-status") == text


def test_the_dashboard_follows_the_stream_and_falls_back_to_its_timer_while_it_is_gone(
    browser, live_server, stream
):
    staff = get_user_model().objects.create_user("operator", password="operator-pw", is_staff=True)

    # Given staff on the dashboard, which opens the staff stream with their ticket
    browser.get(f"{live_server.url}/staff/live/")
    admin_login(browser, username="operator", password="operator-pw")
    WebDriverWait(browser, 10).until(status_is("Live"))
    (ticket,) = stream.tickets
    assert signing.loads(ticket, salt=tokens.SALT)["user"] == staff.pk

    # When the stream pushes figures and steps
    pushed = copy.deepcopy(snapshot(probe=StubProbe()))
    pushed["business"]["summary"]["5m"]["orders_placed"] = 42
    stream.push("figures", pushed)
    order_id = str(uuid.uuid4())
    for n in range(3):
        stream.push(
            "step",
            {
                "type": "OrderPlaced",
                "message_id": str(uuid.uuid4()),
                "occurred_at": f"2026-01-01T12:00:0{n}+00:00",
                "order_id": order_id,
                "title": f"Order placed ({n})",
                "tone": "good",
            },
        )

    # Then the page shows them: the figures redrawn, the steps newest first, linked to the admin
    WebDriverWait(browser, 5).until(lambda b: shown(b, "orders-placed-5m") == "42")
    WebDriverWait(browser, 5).until(lambda b: len(feed_items(b)) == 3)
    feed = feed_items(browser)
    assert "Order placed (2)" in feed[0].text
    link = feed[0].find_element(By.TAG_NAME, "a").get_attribute("href")
    assert link == f"{live_server.url}/admin/orders/order/{order_id}/change/"

    # When the streaming server goes away
    stream.stop()

    # Then the page says so and shows the database's figures on its timer
    WebDriverWait(browser, 5).until(status_is(TIMER_TEXT))
    WebDriverWait(browser, 7).until(lambda b: shown(b, "orders-placed-5m") == "0")

    # and once it is back, the page is live again within its retry
    stream.start()
    WebDriverWait(browser, 15).until(status_is("Live"))
    assert len(stream.tickets) == 2

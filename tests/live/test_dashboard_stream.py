"""The dashboard in a real Chromium on the real staff stream: pushed, without Redis, and back.

Every app's worker runs the orders, a real ``stream_processor --only
aggregates`` counts them, ``live_push`` pushes their steps and the figures,
and uvicorn streams them, all on a Redis of the test's own, which it stops
and starts again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.flow.conftest import place_orders, wait_until_closed
from tests.support.browser import admin_login
from tests.support.live import LiveStack
from tests.support.redis import RedisServer
from tests.support.stream_processor import StreamProcessors, stream_processors_running
from tests.support.workers import worker_env

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

TIMER_TEXT = "Live updates unavailable: refreshing every 5 s"


@pytest.fixture
def aggregates(app_workers, django_db_blocker) -> Iterator[StreamProcessors]:
    env = worker_env(settings.CELERY_BROKER_URL, django_db_blocker)
    with stream_processors_running(env, ["aggregates"]) as running:
        yield running


@pytest.fixture
def pushed_dashboard(tmp_path, redis_server_program, app_workers, django_db_blocker, settings):
    redis_server = RedisServer(tmp_path, appendonly=False).start()
    stack = LiveStack(worker_env(settings.CELERY_BROKER_URL, django_db_blocker), redis_server.url)
    try:
        stack.start()
        settings.REDIS_URL, settings.LIVE_STREAM_URL = redis_server.url, stack.url
        yield stack, redis_server
    finally:
        stack.stop()
        redis_server.stop()


def shown(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def status_is(text: str):
    return lambda browser: shown(browser, "live-status") == text


def test_the_dashboard_is_pushed_steps_and_figures_polls_without_redis_and_comes_back(
    browser, live_server, stock, aggregates, pushed_dashboard
):
    _, redis_server = pushed_dashboard
    get_user_model().objects.create_user("operator", password="operator-pw", is_staff=True)
    sku = stock(on_hand=20, price="12.50")

    # Given staff on the dashboard, live on the staff stream
    browser.get(f"{live_server.url}/staff/live/")
    admin_login(browser, username="operator", password="operator-pw")
    WebDriverWait(browser, 15).until(status_is("Live"))

    # When orders run
    ids = place_orders(sku, workflows=["choreography", "orchestration", "choreography"],
                       email="ada@example.com")  # fmt: skip
    for order_id in ids:
        wait_until_closed(order_id)

    # Then their steps come down the stream into the feed, linked to each order's admin page,
    # and the pushed figures count them, with no reload and no timer
    def feed_orders(b) -> set[str]:
        links = b.find_elements(By.CSS_SELECTOR, "#feed li a")
        return {link.get_attribute("href").split("/")[-3] for link in links}

    WebDriverWait(browser, 10).until(lambda b: {str(i) for i in ids} <= feed_orders(b))
    WebDriverWait(browser, 15).until(lambda b: shown(b, "orders-completed-5m") == "3")
    assert shown(browser, "orders-placed-5m") == "3"
    assert shown(browser, "live-status") == "Live"

    # When Redis goes away, the page says so and keeps its figures up on its timer
    redis_server.kill()
    WebDriverWait(browser, 15).until(status_is(TIMER_TEXT))
    [late] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
    wait_until_closed(late)
    WebDriverWait(browser, 20).until(lambda b: shown(b, "orders-completed-5m") == "4")

    # and once Redis is back, the page is live again
    redis_server.start()
    WebDriverWait(browser, 30).until(status_is("Live"))

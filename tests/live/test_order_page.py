"""The order page in a real headless Chromium: pushed, caught up after a cut, polling without Redis.

The page is served by the test's live server (WSGI, as in production) and
streams from the real streaming server; the order runs through the real app
workers. What the browser fetched is read from its own performance log.
"""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.flow.conftest import place_orders, wait_until_closed
from tests.support.live import LiveStack
from tests.support.redis import RedisServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.workers import consumer_paused, worker_env

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def requests_for(browser, path: str) -> list[str]:
    """The URLs the page requested so far whose path is ``path`` (from the performance log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if path in url:
                urls.append(url)
    return urls


def mode(browser) -> str:
    return browser.find_element(By.ID, "live-note").get_attribute("data-mode")


def status(browser) -> str:
    return browser.find_element(By.ID, "status").text


def open_order_page(browser, live_server, order_id) -> None:
    browser.get(f"{live_server.url}/orders/{order_id}/")
    WebDriverWait(browser, 15).until(lambda b: mode(b) == "push")
    assert status(browser) == "Placed"


@pytest.fixture
def pushed_through(settings, live_server):
    """Render order pages that stream from ``url`` (and see Redis at ``redis_url``)."""

    def point(url: str, redis_url: str) -> None:
        settings.REDIS_URL = redis_url
        settings.LIVE_STREAM_URL = url

    return point


def test_the_order_page_goes_from_placed_to_completed_pushed_without_polling(
    browser, live_server, live_stack, pushed_through, stock, app_workers
):
    pushed_through(live_stack.url, live_stack.redis_url)
    sku = stock(on_hand=5)
    with consumer_paused(app_workers["payments"], "payments"):
        [order_id] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
        open_order_page(browser, live_server, order_id)
        requests_for(browser, "/")  # the log so far: the page's own load
        browser.execute_script("window.loadedOnce = 'the same page';")

    WebDriverWait(browser, 30).until(lambda b: status(b) == "Completed")
    assert browser.execute_script("return window.loadedOnce") == "the same page"
    reads = requests_for(browser, f"/api/orders/{order_id}/")
    assert len(reads) <= 1, f"the page read the order {len(reads)} times after load: {reads}"
    timeline = browser.find_element(By.ID, "timeline").text
    for words in ("Payment received", "In stock and set aside for you", "Order complete"):
        assert words in timeline
    assert "Packed and handed to ParcelPost" in timeline
    for event_type in ("PaymentProcessed", "ShipmentCreated", "OrderCompleted"):
        assert event_type in timeline  # kept visible for the curious
    items = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    ids = [item.get_attribute("data-message-id") for item in items]
    assert len(ids) == len(set(ids)), "a step is shown twice"
    reached = browser.find_elements(By.CSS_SELECTOR, "#progress li.reached")
    assert [item.text for item in reached][-1] == "Completed"


def test_a_step_published_while_the_connection_is_cut_is_shown_when_it_returns(
    browser, live_server, live_stack, pushed_through, stock, app_workers
):
    proxy = TcpProxy(("127.0.0.1", live_stack.port))
    proxy.start()
    try:
        pushed_through(f"http://127.0.0.1:{proxy.port}", live_stack.redis_url)
        sku = stock(on_hand=5)
        with consumer_paused(app_workers["payments"], "payments"):
            [order_id] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
            open_order_page(browser, live_server, order_id)
            proxy.stop()  # the connection drops, and cannot be made again for now
        assert wait_until_closed(order_id).status == "completed"
        assert status(browser) == "Placed", "nothing can have reached the page"
        proxy.start()

        WebDriverWait(browser, 15).until(lambda b: status(b) == "Completed")
        assert mode(browser) == "push", "it came back by the push, not by polling"
        assert requests_for(browser, f"/api/orders/{order_id}/") == []
        ids = [
            item.get_attribute("data-message-id")
            for item in browser.find_elements(By.CSS_SELECTOR, "#timeline li")
        ]
        assert len(ids) == len(set(ids)) >= 5
    finally:
        proxy.stop()


@pytest.fixture
def own_redis_stack(tmp_path, redis_server_program, app_workers, rabbitmq, django_db_blocker):
    redis_server = RedisServer(tmp_path, appendonly=False).start()
    stack = LiveStack(worker_env(rabbitmq, django_db_blocker), redis_server.url)
    try:
        yield stack.start(), redis_server
    finally:
        stack.stop()
        redis_server.stop()


def test_with_redis_stopped_the_page_polls_says_so_and_still_completes_then_pushes_again(
    browser, live_server, own_redis_stack, pushed_through, stock, app_workers
):
    stack, redis_server = own_redis_stack
    pushed_through(stack.url, redis_server.url)
    sku = stock(on_hand=5)
    with consumer_paused(app_workers["payments"], "payments"):
        [order_id] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
        open_order_page(browser, live_server, order_id)
        redis_server.kill()
        WebDriverWait(browser, 15).until(lambda b: mode(b) == "polling")
        note = browser.find_element(By.ID, "live-note").text
        assert "unavailable" in note

    WebDriverWait(browser, 30).until(lambda b: status(b) == "Completed")
    assert requests_for(browser, f"/api/orders/{order_id}/"), "it got there by polling"

    # Redis returns, and with it the push.
    redis_server.start()
    with consumer_paused(app_workers["payments"], "payments"):
        [waiting] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
        browser.get(f"{live_server.url}/orders/{waiting}/")
        WebDriverWait(browser, 20).until(lambda b: mode(b) == "push")
    WebDriverWait(browser, 30).until(lambda b: status(b) == "Completed")

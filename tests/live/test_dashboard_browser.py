"""Staff watch a burst of orders on the dashboard, in a real Chromium, with no Redis for the page.

Every app's worker takes the orders on and a real ``stream_processor --only
aggregates`` counts their events from the RabbitMQ stream; the page, with no
stream to listen to, fetches its figures every 5 s. Once the database holds
the burst's figures the page must show them within a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Sum
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from analytics.models import MinuteFigure
from orders.models import Order
from tests.flow.conftest import place_orders, wait_until_closed
from tests.support.browser import admin_login, screenshot
from tests.support.stream_processor import StreamProcessors, stream_processors_running
from tests.support.waiting import wait_for
from tests.support.workers import APP_QUEUES, worker_env

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

DECLINED = "4000000000000002"
# The page fetches figures.json every 5 s: what the database holds shows within one refresh.
A_FEW_SECONDS = 8


@pytest.fixture
def aggregates(app_workers, django_db_blocker) -> Iterator[StreamProcessors]:
    """The aggregates' stream processor, from the stream's head, on the workers' database."""
    env = worker_env(settings.CELERY_BROKER_URL, django_db_blocker)
    with stream_processors_running(env, ["aggregates"]) as running:
        yield running


def figure_total(metric: str) -> Decimal:
    return MinuteFigure.objects.filter(slot="live", metric=metric).aggregate(s=Sum("value"))[
        "s"
    ] or Decimal(0)


def shown(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def test_staff_see_a_burst_of_orders_on_the_dashboard_as_the_database_counts_it(
    browser, live_server, stock, app_workers, aggregates, settings
):
    settings.REDIS_URL = ""  # the page has no stream: it refreshes on its timer
    get_user_model().objects.create_user("operator", password="operator-pw", is_staff=True)
    plenty, scarce = stock(on_hand=50, price="12.50"), stock(on_hand=2, price="4.00")

    # Given staff who open the dashboard and sign in on the admin's login page
    browser.get(f"{live_server.url}/staff/live/")
    assert browser.current_url.startswith(f"{live_server.url}/admin/login/")
    admin_login(browser, username="operator", password="operator-pw")
    assert browser.current_url == f"{live_server.url}/staff/live/"
    assert shown(browser, "live-status") == "No Redis configured: refreshing every 5 s"
    assert shown(browser, "orders-placed-5m") == "0"

    # When a burst of orders runs through every app's worker: good cards under both
    # workflows, declined cards, and more orders of the scarce product than it has
    ids = [
        *place_orders(plenty, workflows=["choreography"] * 6, email="ada@example.com"),
        *place_orders(plenty, workflows=["orchestration"] * 3, email="bob@example.com"),
        *place_orders(
            plenty, workflows=["choreography"] * 2, email="eve@example.com", card_number=DECLINED
        ),
        *place_orders(scarce, workflows=["choreography"] * 3, email="sam@example.com"),
    ]
    for order_id in ids:
        wait_until_closed(order_id)
    orders = Order.objects.filter(pk__in=ids)
    completed = orders.filter(status="completed").count()
    cancelled = orders.filter(status="cancelled").count()
    assert (completed + cancelled, cancelled >= 3) == (len(ids), True)
    # and the stream processor has counted all of it
    wait_for(
        lambda: (
            (
                figure_total("orders_placed"),
                figure_total("orders_completed"),
                figure_total("orders_cancelled"),
            )
            == (len(ids), completed, cancelled)
        ),
        what="the aggregates to count every order of the burst",
    )
    captured, refunded = figure_total("money_captured"), figure_total("money_refunded")
    assert refunded > 0

    # Then within a few seconds the dashboard shows what the database holds
    expected = {
        "orders-placed-5m": str(len(ids)),
        "orders-completed-5m": str(completed),
        "orders-cancelled-5m": str(cancelled),
        "captured-5m": f"{captured:.2f} EUR",
        "refunded-5m": f"{refunded:.2f} EUR",
        "orders-placed-60m": str(len(ids)),
    }
    try:
        WebDriverWait(browser, A_FEW_SECONDS).until(
            lambda b: all(shown(b, key) == value for key, value in expected.items())
        )
    finally:
        screenshot(browser, "live-dashboard.png")
    assert shown(browser, "decline-rate-5m") != "–"
    assert shown(browser, "p95-5m") != "–"
    # with each app queue's worker as its consumer, from the broker itself
    for queue in APP_QUEUES:
        assert shown(browser, f"queue-{queue}-consumers") == "1", queue
    assert shown(browser, "live-status") == "No Redis configured: refreshing every 5 s"

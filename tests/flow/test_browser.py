"""A real headless Chromium orders through the storefront and watches the order complete live."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from orders.models import Order
from tests.flow.conftest import ADDRESS
from tests.support.browser import screenshot
from tests.support.workers import consumer_paused

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_customer_orders_in_the_storefront_and_sees_it_complete_without_reloading(
    browser, live_server, stock, app_workers
):
    sku = stock(on_hand=3, price="15.00")

    # Given the storefront
    browser.get(f"{live_server.url}/")
    assert "15.00 EUR" in browser.page_source

    # When the customer fills in the order form and submits it
    browser.find_element(By.NAME, f"qty_{sku}").clear()
    browser.find_element(By.NAME, f"qty_{sku}").send_keys("2")
    fields = {"email": "ada@example.com", "card_number": "4242 4242 4242 4242", **ADDRESS}
    country = fields.pop("country")
    for name, value in fields.items():
        browser.find_element(By.NAME, name).send_keys(value)
    Select(browser.find_element(By.NAME, "country")).select_by_value(country)
    with consumer_paused(app_workers["payments"], "payments"):
        browser.find_element(By.ID, "place-order").click()

        # Then they land on their order's own page, placed but not yet paid
        WebDriverWait(browser, 20).until(lambda b: "/orders/" in b.current_url)
        order = Order.objects.get()
        assert browser.current_url == f"{live_server.url}/orders/{order.id}/"
        assert order.ship_country == country
        assert browser.find_element(By.ID, "status").text == "Placed"
        browser.execute_script("window.loadedOnce = 'still the same page';")

    # and watch it reach "Completed" while the page stays loaded
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "status").text == "Completed")
    assert browser.execute_script("return window.loadedOnce") == "still the same page"
    timeline = browser.find_element(By.ID, "timeline").text
    for event in (
        "OrderPlaced",
        "PaymentProcessed",
        "InventoryReserved",
        "ShipmentCreated",
        "OrderCompleted",
    ):
        assert event in timeline
    assert "PP" in browser.find_element(By.ID, "shipment").text
    screenshot(browser, "order-completed.png")

"""The README's five-minute tour, in a real headless Chromium against real workers:
order from the storefront, come back through the email's link, see an order over the stock
refused before any charge, and reach the stuck orders from the admin's index.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from gateway.models import Charge
from notifications.models import SentEmail
from orders.models import CatalogItem, Order
from tests.flow.conftest import ADDRESS
from tests.support.browser import admin_login, screenshot
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def fill_in_the_order_form(browser, *, quantities: dict[str, int]) -> None:
    for sku, quantity in quantities.items():
        field = browser.find_element(By.NAME, f"qty_{sku}")
        field.clear()
        field.send_keys(str(quantity))
    for name in ("name", "line1", "city", "postal_code"):
        browser.find_element(By.NAME, name).send_keys(ADDRESS[name])
    browser.find_element(By.NAME, "email").send_keys("ada@example.com")
    Select(browser.find_element(By.NAME, "country")).select_by_value(ADDRESS["country"])
    browser.find_element(By.NAME, "card_number").send_keys("4242 4242 4242 4242")


def test_the_newcomers_tour(browser, live_server, stock, app_workers, django_user_model):
    mug = stock(on_hand=5, price="12.50")

    # Given the storefront: the customer orders two mugs and sees the total as they type
    browser.get(f"{live_server.url}/")
    fill_in_the_order_form(browser, quantities={mug: 2})
    assert browser.find_element(By.ID, "running-total").text == "Total: 25.00 EUR"
    browser.find_element(By.ID, "place-order").click()
    WebDriverWait(browser, 20).until(lambda b: "/orders/" in b.current_url)
    order = Order.objects.get()

    # When they close the tab and open the link in the email that says "we have your order"
    browser.get("about:blank")
    email = wait_for(
        lambda: SentEmail.objects.filter(order_id=order.id, kind="placed").first(),
        what="the order's confirmation email",
    )
    link = re.search(r"https?://\S+/orders/\S+/", email.body).group()
    assert link == f"{settings.SHOP_URL}/orders/{order.id}/"
    browser.get(f"{live_server.url}{urlsplit(link).path}")

    # Then they are back on their order's page, which follows it to the end
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "status").text == "Completed")
    assert order.reference in browser.page_source

    # Given the storefront again, with three mugs left
    wait_for(lambda: CatalogItem.objects.filter(sku=mug, available=3).exists(),
             what="the storefront's catalog to count the two mugs gone")  # fmt: skip
    browser.get(f"{live_server.url}/")
    charges = Charge.objects.count()
    # When the customer asks for more than it shows available
    fill_in_the_order_form(browser, quantities={mug: 4})
    browser.find_element(By.ID, "place-order").click()

    # Then the form says so next to the mug, and nothing is ordered or charged
    (error,) = WebDriverWait(browser, 20).until(
        lambda b: b.find_elements(By.ID, f"id_qty_{mug}_errors")
    )
    assert error.text == "Only 3 available."
    screenshot(browser, "tour-over-stock.png")
    assert (Order.objects.count(), Charge.objects.count()) == (1, charges)

    # Given staff who sign in to the admin
    django_user_model.objects.create_superuser("staff", "staff@example.com", "staff-pw")
    browser.get(f"{live_server.url}/admin/")
    admin_login(browser, username="staff", password="staff-pw")

    # When they follow "Stuck orders" from the admin's index
    (link,) = WebDriverWait(browser, 20).until(
        lambda b: b.find_elements(By.LINK_TEXT, "Stuck orders")
    )
    link.click()

    # Then the stuck-orders page opens
    WebDriverWait(browser, 10).until(lambda b: "/stuck" in b.current_url)
    assert "Stuck orders" in browser.find_element(By.TAG_NAME, "h1").text

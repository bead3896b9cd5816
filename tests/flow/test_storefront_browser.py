"""The storefront's form in a real Chromium: a running total, and columns an error never moves."""

import time

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway import client as gateway
from gateway.models import CardToken
from orders.models import CatalogItem, Order
from tests.support.browser import screenshot

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

# Where each column of the catalog starts and ends, and where each quantity box is.
COLUMNS = """
const table = document.getElementById('catalog');
const edges = [...table.tHead.rows[0].cells].map(c => c.getBoundingClientRect())
  .map(r => [Math.round(r.left), Math.round(r.right)]);
const inputs = [...table.querySelectorAll('input')]
  .map(i => Math.round(i.getBoundingClientRect().left));
return {edges, inputs};
"""


@pytest.fixture
def catalog(db):
    now = timezone.now()
    for sku, name, price, available in [
        ("MUG-1", "Mug", "12.50", 5),
        ("PEN-5", "Brass fountain pen with a medium nib, in its box", "12.60", 10),
        ("TEE-9", "T-shirt", "3.00", 0),
    ]:
        CatalogItem.objects.create(
            sku=sku, name=name, price=price, currency="EUR", available=available, as_of=now
        )


def total(browser) -> str:
    return browser.find_element(By.ID, "running-total").text


def set_quantity(browser, sku: str, quantity: str) -> None:
    box = browser.find_element(By.NAME, f"qty_{sku}")
    box.clear()
    box.send_keys(quantity)


def test_the_total_follows_the_quantities_and_an_error_moves_no_column(
    browser, live_server, catalog
):
    # Given the storefront
    browser.get(f"{live_server.url}/")
    before = browser.execute_script(COLUMNS)
    assert total(browser) == "Total: nothing chosen yet"

    # When the customer chooses quantities, the total follows at the table's prices
    set_quantity(browser, "PEN-5", "3")
    WebDriverWait(browser, 5).until(lambda b: total(b) == "Total: 37.80 EUR")
    set_quantity(browser, "MUG-1", "2")
    WebDriverWait(browser, 5).until(lambda b: total(b) == "Total: 62.80 EUR")
    set_quantity(browser, "MUG-1", "two")  # not a quantity: counts for nothing
    WebDriverWait(browser, 5).until(lambda b: total(b) == "Total: 37.80 EUR")
    screenshot(browser, "storefront-total.png")

    # and sends the form with more pens than there are, more mugs than allowed, a bad email
    set_quantity(browser, "PEN-5", "11")
    set_quantity(browser, "MUG-1", "101")
    browser.find_element(By.NAME, "email").send_keys("not an email")
    Select(browser.find_element(By.NAME, "country")).select_by_value("FR")
    browser.find_element(By.NAME, "card_number").send_keys("4242 4242 4242 4242")
    browser.find_element(By.ID, "place-order").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".errorlist"))
    screenshot(browser, "storefront-errors.png")

    # Then no column has moved, and each line says what is wrong below it
    assert browser.execute_script(COLUMNS) == before
    lines = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "tr.line-errors")]
    assert lines == ["Ensure this value is less than or equal to 100.", "Only 10 available."]
    # the quantities sent back count at once, the country stays chosen, the card is typed again
    assert total(browser) == "Total: 1401.10 EUR"
    assert Select(browser.find_element(By.NAME, "country")).first_selected_option.text == "France"
    assert browser.find_element(By.NAME, "card_number").get_attribute("value") == ""
    assert not Order.objects.exists()


def fill_the_order_form(browser) -> None:
    set_quantity(browser, "MUG-1", "1")
    for name, value in [
        ("email", "ada@example.com"),
        ("name", "Ada Lovelace"),
        ("line1", "12 St James's Square"),
        ("city", "London"),
        ("postal_code", "SW1Y 4JH"),
    ]:
        box = browser.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    Select(browser.find_element(By.NAME, "country")).select_by_value("GB")
    card = browser.find_element(By.NAME, "card_number")
    card.clear()
    card.send_keys("4242 4242 4242 4242")


def on_an_order_page(browser) -> str:
    WebDriverWait(browser, 10).until(lambda b: "/orders/" in b.current_url)
    return browser.current_url


def test_a_second_click_while_the_first_is_placing_places_no_second_order(
    browser, live_server, catalog, monkeypatch
):
    # Given a shop slow to place an order (the gateway takes a second to tokenize the card)
    tokenize = gateway.tokenize

    def slowly(**kwargs):
        time.sleep(1)
        return tokenize(**kwargs)

    monkeypatch.setattr(gateway, "tokenize", slowly)
    browser.get(f"{live_server.url}/")
    fill_the_order_form(browser)

    # When the customer clicks Place order, and again before the page changes (the browser
    # drops the first request's answer and sends the form again)
    browser.execute_script(
        "const form = document.querySelector('form');"
        "form.requestSubmit(); setTimeout(() => form.requestSubmit(), 300);"
    )

    # Then the page shown is that of the one order placed
    url = on_an_order_page(browser)
    order = Order.objects.get()
    assert url.endswith(f"/orders/{order.pk}/")
    assert CardToken.objects.count() == 1


def test_back_and_submit_again_lands_on_the_order_already_placed(browser, live_server, catalog):
    browser.get(f"{live_server.url}/")
    fill_the_order_form(browser)
    browser.find_element(By.ID, "place-order").click()
    first = on_an_order_page(browser)

    # The customer goes back to the form and sends it again
    browser.back()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "place-order"))
    fill_the_order_form(browser)
    browser.find_element(By.ID, "place-order").click()

    WebDriverWait(browser, 10).until(lambda b: b.current_url == first)
    assert Order.objects.count() == 1

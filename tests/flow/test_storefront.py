"""The storefront and its order form, through Django's test client."""

import re

import pytest
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from gateway.models import CardToken
from messaging.models import OutboxMessage
from orders import services
from orders.destinations import shippable_countries
from orders.forms import OrderForm
from orders.models import Order
from orders.views import form_field_of
from tests.flow.conftest import form_data

# The longest address the order's email column holds: 254 characters.
LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"

pytestmark = pytest.mark.django_db(databases="__all__")


def test_storefront_lists_products_with_price_and_availability(client, storefront_catalog):
    page = client.get("/").content.decode()
    assert "Mug" in page and "12.50 EUR" in page
    assert re.search(r"Pen.*out of stock", page, re.S)


def test_a_valid_order_lands_on_its_own_unguessable_page(client, storefront_catalog):
    response = client.post("/", form_data())

    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.id}/"
    page = client.get(response["Location"]).content.decode()
    assert "Placed" in page and "Mug" in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"email": "nope"}, "Enter a valid email address."),
        ({"country": "France"}, "is not an ISO 3166 country code"),
        ({"country": "AQ"}, "We cannot deliver to Antarctica (AQ)"),
        ({"country": "ZZ"}, "is not an ISO 3166 country code"),
        ({"country": "fr"}, "Write the country code in capitals"),
        ({"country": ""}, "Choose a country."),
        ({"qty_MUG-1": "6"}, "Only 5 available."),
        ({"qty_PEN-2": "1"}, "Out of stock."),
        ({"card_number": "4242 4242 4242 4241"}, "This card number is not valid"),
        ({"qty_MUG-1": "-1"}, "greater than or equal to 0"),
        ({"qty_MUG-1": "0"}, "Choose a quantity for at least one product."),
        ({"name": ""}, "This field is required."),
        ({"qty_MUG-1": str(2**63)}, "Ensure this value is less than or equal to 100."),
        ({"qty_MUG-1": "1.5"}, "Enter a whole number."),
        ({"qty_MUG-1": "9" * 5000}, "Enter a whole number."),
        ({"qty_MUG-1": "two"}, "Enter a whole number."),
        ({"email": "x" + LONGEST_EMAIL}, "Ensure this value has at most 254 characters"),
        ({"name": "é" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
        ({"postal_code": "1" * 21}, "Ensure this value has at most 20 characters"),
        ({"name": "Ada\x00"}, "Null characters are not allowed."),
        ({"city": "Lon\tdon"}, "Remove the control character U+0009 (character 4)"),
        ({"card_number": "4242 4242 4242 424²"}, "Enter a card number of 12 to 19 digits"),
        (
            {"card_number": "４２４２４２４２４２４２４２４２"},
            "Enter a card number of 12 to 19 digits",
        ),
    ],
)
def test_form_errors_are_shown_per_field_and_nothing_is_written(
    client, storefront_catalog, overrides, message
):
    response = client.post("/", form_data(**overrides))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert not CardToken.objects.exists()


def test_the_longest_values_the_columns_hold_are_stored_whole(client, storefront_catalog):
    """Unicode at every length limit: accepted and stored as typed, never a database error."""
    typed = {
        "email": LONGEST_EMAIL,
        "name": "😀" * 200,
        "city": "東京" * 50,
        "postal_code": "Ω" * 20,
    }

    response = client.post("/", form_data(**typed))

    assert response.status_code == 302
    order = Order.objects.get()
    stored = (order.email, order.ship_name, order.ship_city, order.ship_postal_code)
    assert stored == (typed["email"], typed["name"], typed["city"], typed["postal_code"])


def test_an_oversized_form_is_refused_and_nothing_is_written(storefront_catalog, settings):
    """Refused by Django before the form is read, with the CSRF check on as in production."""
    browser = Client(enforce_csrf_checks=True)
    token = get_token(RequestFactory().get("/"))
    browser.cookies[settings.CSRF_COOKIE_NAME] = token
    data = form_data(csrfmiddlewaretoken=token, line1="x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE)

    response = browser.post("/", data)

    assert response.status_code == 400
    assert "larger than the 2560 KB a form may carry" in response.content.decode()
    assert not Order.objects.exists()


def test_the_order_form_requires_its_csrf_token(storefront_catalog):
    response = Client(enforce_csrf_checks=True).post("/", form_data())

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_unknown_order_page_is_404(client):
    assert client.get("/orders/00000000-0000-0000-0000-000000000001/").status_code == 404


def test_an_empty_form_shows_every_error_on_the_first_submit(client, storefront_catalog):
    # When the customer sends the form with nothing filled in
    response = client.post("/", {"qty_MUG-1": "0", "qty_PEN-2": "0"})

    # Then the product is asked for together with every required field, at once
    page = response.content.decode()
    assert response.status_code == 400
    assert "Choose a quantity for at least one product." in page
    # email, name, address, city, postal code and card number
    assert page.count("This field is required.") == 6
    assert "Choose a country." in page
    assert not Order.objects.exists()


def test_a_refused_quantity_is_not_also_told_to_choose_one(client, storefront_catalog):
    page = client.post("/", form_data(**{"qty_MUG-1": "two"})).content.decode()

    assert "Enter a whole number." in page
    assert "Choose a quantity for at least one product." not in page


def test_the_card_number_is_never_sent_back_after_an_error(client, storefront_catalog):
    # When an order with a card number fails on another field
    response = client.post("/", form_data(email="nope", card_number="4242 4242 4242 4242"))

    # Then the page asks for the card again, its field empty, still a numeric card field
    page = response.content.decode()
    assert response.status_code == 400
    assert "4242" not in page.replace("Test cards: 4242 4242 4242 4242", "")
    card = re.search(r'<input[^>]*name="card_number"[^>]*>', page).group(0)
    assert "value=" not in card
    assert 'type="text"' in card
    assert 'autocomplete="cc-number"' in card and 'inputmode="numeric"' in card
    assert "Enter the card number again" in page
    # while what else was typed is kept
    assert 'value="Ada Lovelace"' in page


def test_a_quantity_over_what_is_available_is_refused_on_its_line_before_any_charge(
    client, storefront_catalog
):
    # Given 5 mugs available; when the customer asks for 6
    response = client.post("/", form_data(**{"qty_MUG-1": "6"}))

    # Then the mug's line says how many there are, and nothing is written or charged
    page = response.content.decode()
    assert response.status_code == 400
    line_errors = re.search(
        r'<tr class="line-errors" id="id_qty_MUG-1_errors">(.*?)</tr>', page, re.S
    )
    assert line_errors and "Only 5 available." in line_errors.group(1)
    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert not CardToken.objects.exists()


def test_the_country_is_chosen_from_those_the_carrier_serves(client, storefront_catalog):
    page = client.get("/").content.decode()

    select = re.search(r'<select name="country"[^>]*>(.*?)</select>', page, re.S).group(1)
    options = dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select))
    assert options[""] == "Choose a country"
    assert options["FR"] == "France" and options["GB"] == "United Kingdom"
    assert "AQ" not in options
    assert [code for code, _ in shippable_countries()] == [c for c in options if c]


def test_the_chosen_country_is_sent_as_its_code(client, storefront_catalog):
    response = client.post("/", form_data(country="FR"))

    assert response.status_code == 302
    assert Order.objects.get().ship_country == "FR"


@pytest.mark.parametrize(
    ("service_field", "form_field"),
    [
        ("items.0.quantity", "qty_MUG-1"),
        ("items.1.sku", "qty_PEN-2"),
        ("shipping_address.country", "country"),
        ("card_number", "card_number"),
        ("workflow", "workflow"),
        ("items.7.quantity", None),
        ("email", None),
    ],
)
def test_an_error_order_place_finds_lands_on_the_field_it_is_about(service_field, form_field):
    # Given a form sent for two lines, mugs then pens
    form = OrderForm({}, products=[])

    # Then the service's error about each line is on that line's quantity
    skus = ["MUG-1", "PEN-2"]
    assert form_field_of(service_field, form=form, skus=skus) == form_field


def test_a_line_order_place_refuses_shows_on_that_lines_quantity(
    client, storefront_catalog, monkeypatch
):
    # Given orders' services refusing the mugs (its copy of the catalog moved on meanwhile)
    def refuse(**kwargs):
        raise services.OrderRejected(
            {"items.0.quantity": ["Only 1 Mug (MUG-1) available; you asked for 2."]}
        )

    monkeypatch.setattr(services, "order_place", refuse)

    # When the customer orders 2
    page = client.post("/", form_data()).content.decode()

    # Then the mug's line says so
    line_errors = re.search(
        r'<tr class="line-errors" id="id_qty_MUG-1_errors">(.*?)</tr>', page, re.S
    )
    assert line_errors and "Only 1 Mug (MUG-1) available" in line_errors.group(1)

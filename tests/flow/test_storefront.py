"""The storefront and its order form, through Django's test client."""

import re

import pytest
from django.test import Client

from orders.models import Order
from tests.flow.conftest import form_data

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
        ({"country": "France"}, "Enter a two-letter country code"),
        ({"card_number": "4242 4242 4242 4241"}, "This card number is not valid"),
        ({"qty_MUG-1": "-1"}, "greater than or equal to 0"),
        ({"qty_MUG-1": "0"}, "Choose a quantity for at least one product."),
        ({"name": ""}, "This field is required."),
    ],
)
def test_form_errors_are_shown_per_field_and_nothing_is_written(
    client, storefront_catalog, overrides, message
):
    response = client.post("/", form_data(**overrides))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Order.objects.exists()


def test_the_order_form_requires_its_csrf_token(storefront_catalog):
    response = Client(enforce_csrf_checks=True).post("/", form_data())

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_unknown_order_page_is_404(client):
    assert client.get("/orders/00000000-0000-0000-0000-000000000001/").status_code == 404

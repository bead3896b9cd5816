"""The storefront and its order form, through Django's test client."""

import re

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import CatalogItem, Order

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def catalog(db):
    now = timezone.now()
    CatalogItem.objects.create(
        sku="MUG-1", name="Mug", price="12.50", currency="EUR", available=5, as_of=now
    )
    CatalogItem.objects.create(
        sku="PEN-2", name="Pen", price="3.00", currency="EUR", available=0, as_of=now
    )


def form_data(**overrides) -> dict:
    data = {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
        "card_number": "4242 4242 4242 4242",
        "qty_MUG-1": "2",
        "qty_PEN-2": "0",
    }
    data.update(overrides)
    return data


def test_storefront_lists_products_with_price_and_availability(client, catalog):
    page = client.get("/").content.decode()
    assert "Mug" in page and "12.50 EUR" in page
    assert re.search(r"Pen.*out of stock", page, re.S)


def test_a_valid_order_lands_on_its_own_unguessable_page(client, catalog):
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
    client, catalog, overrides, message
):
    response = client.post("/", form_data(**overrides))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Order.objects.exists()


def test_the_order_form_requires_its_csrf_token(catalog):
    response = Client(enforce_csrf_checks=True).post("/", form_data())

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_unknown_order_page_is_404(client):
    assert client.get("/orders/00000000-0000-0000-0000-000000000001/").status_code == 404

"""The order form places its order once: a double submit or a resubmit after going back lands
on the order it placed."""

import re
import threading
import time
import uuid

import pytest
from django.db import connections
from django.test import Client

from gateway import client as gateway
from gateway.models import CardToken
from orders.models import Order
from tests.flow.conftest import form_data
from tests.orders.factories import CatalogItemFactory
from tests.support.envelopes import published

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def storefront_catalog():
    """The products form_data() orders from: a mug in stock and a pen sold out."""
    CatalogItemFactory(sku="MUG-1", name="Mug", available=5)
    CatalogItemFactory(sku="PEN-2", name="Pen", available=0)


def token_on(page) -> str:
    found = re.search(r'name="placement_token" value="([0-9a-f-]{36})"', page.content.decode())
    assert found, "the form carries no one-time token"
    return found.group(1)


def test_each_form_shown_carries_a_token_of_its_own(client, storefront_catalog):
    assert token_on(client.get("/")) != token_on(client.get("/"))


def test_a_double_submit_places_one_order_and_both_land_on_it(client, storefront_catalog):
    data = form_data(placement_token=token_on(client.get("/")))

    first = client.post("/", data)
    second = client.post("/", data)

    order = Order.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/orders/{order.pk}/"
    assert CardToken.objects.count() == 1
    assert len(published("OrderPlaced")) == 1


def test_going_back_and_resubmitting_a_changed_form_lands_on_the_first_order(
    client, storefront_catalog
):
    token = token_on(client.get("/"))
    placed = client.post("/", form_data(placement_token=token))

    # The page the browser goes back to still holds the token; the customer changes a quantity
    again = client.post("/", form_data(placement_token=token, **{"qty_MUG-1": "1"}))

    assert again["Location"] == placed["Location"]
    assert Order.objects.get().lines.get().quantity == 2


def test_a_form_shown_again_after_an_error_keeps_its_token_and_then_places_the_order(
    client, storefront_catalog
):
    token = token_on(client.get("/"))
    refused = client.post("/", form_data(placement_token=token, **{"qty_MUG-1": "9"}))
    assert refused.status_code == 400
    assert token_on(refused) == token

    placed = client.post("/", form_data(placement_token=token, **{"qty_MUG-1": "1"}))

    assert placed["Location"] == f"/orders/{Order.objects.get().pk}/"


def test_a_form_without_its_token_is_refused_saying_so(client, storefront_catalog):
    data = form_data()
    del data["placement_token"]

    response = client.post("/", data)

    assert response.status_code == 400
    assert "one-time token is missing" in response.content.decode()
    assert token_on(response)  # the form shown again can be sent
    assert not Order.objects.exists()
    assert not CardToken.objects.exists()


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_two_submits_at_once_place_one_order(storefront_catalog, monkeypatch):
    """Two requests in flight together, on connections of their own, as a double click sends."""
    tokenize = gateway.tokenize

    def slowly(**kwargs):
        time.sleep(0.5)
        return tokenize(**kwargs)

    monkeypatch.setattr(gateway, "tokenize", slowly)
    data = form_data(placement_token=str(uuid.uuid4()))
    answers: list = []

    def submit():
        try:
            answers.append(Client().post("/", data))
        finally:
            connections.close_all()  # this thread's, gateway's included

    clicks = [threading.Thread(target=submit) for _ in range(2)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join(timeout=30)

    order = Order.objects.get()
    assert [answer["Location"] for answer in answers] == [f"/orders/{order.pk}/"] * 2
    assert CardToken.objects.count() == 1

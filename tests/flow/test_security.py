"""Who may see what, and what a request may change."""

import uuid

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client

from orders.models import Order
from tests.flow.conftest import form_data
from tests.support.problems import problem_of

pytestmark = pytest.mark.django_db(databases="__all__")

STAFF_PAGES = [
    "/admin/",
    "/admin/orders/order/",
    "/admin/payments/payment/",
    "/admin/messaging/deadletter/",
    "/admin/gateway/outage/",
    "/staff/stuck-orders/",
    "/staff/live/",
    "/staff/live/figures.json",
]


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.using(
            "gateway" if model._meta.app_label == "gateway" else "default"
        ).count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


@pytest.fixture
def customer(db) -> Client:
    user = get_user_model().objects.create_user("customer", "c@example.com", "pw-123456")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("page", STAFF_PAGES)
def test_staff_pages_send_anyone_else_to_the_login(client, customer, page):
    for visitor in (client, customer):
        response = visitor.get(page)
        assert response.status_code == 302
        assert "/login/" in response["Location"]


def test_orders_cannot_be_listed_or_guessed(client, customer, storefront_catalog):
    response = client.post("/", form_data(), follow=True)
    order = Order.objects.get()
    # No list of orders for anyone but staff to walk through
    for visitor in (client, customer):
        listing = visitor.get("/api/orders/")
        assert problem_of(listing, status=403, path="/api/orders/")["detail"].startswith(
            "Listing orders is for staff"
        )
    # and ids are random (UUID4), so a neighbour's cannot be worked out from one's own.
    assert order.pk.version == 4
    stranger = uuid.uuid4()
    assert client.get(f"/api/orders/{stranger}/").status_code == 404
    assert client.get(f"/orders/{stranger}/").status_code == 404
    assert response.status_code == 200


def test_no_get_request_changes_anything(client, admin_client, storefront_catalog):
    client.post("/", form_data())
    order = Order.objects.get()
    before = row_counts()
    pages = [
        # A GET that looks like the order form must not place an order
        "/?" + "&".join(f"{k}={v}" for k, v in form_data().items()),
        f"/orders/{order.pk}/",
        f"/api/orders/{order.pk}/",
        "/api/products/",
        "/api/openapi.json",
        "/api/docs",
    ]
    for page in pages:
        assert client.get(page).status_code == 200, page
    for page in [*STAFF_PAGES, f"/admin/orders/order/{order.pk}/change/"]:
        assert admin_client.get(page).status_code == 200, page
    assert row_counts() == before


def test_admin_actions_need_the_csrf_token(admin_user, storefront_catalog):
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(admin_user)
    response = staff.post("/admin/gateway/outage/add/", {"note": "forged"}, HTTP_HOST="localhost")
    assert response.status_code == 403
    assert not apps.get_model("gateway", "Outage").objects.exists()

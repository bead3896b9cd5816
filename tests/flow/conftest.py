"""Fixtures for the order flow: a catalog of its own per test, orders placed through the API."""

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory import services as inventory
from orders.models import CatalogItem, Order
from tests.support.cluster import CLUSTER_VHOST, Cluster, cluster_available, cluster_beams
from tests.support.prerequisites import require
from tests.support.waiting import wait_for

VALID_CARD = "4242 4242 4242 4242"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


@pytest.fixture
def stock(app_workers):
    """Create products with stock; returns once the storefront's catalog shows them."""

    def create(on_hand: int, price: str = "10.00") -> str:
        sku = f"T-{uuid.uuid4().hex[:8].upper()}"
        inventory.product_save(
            sku=sku, name=f"Test product {sku}", price=Decimal(price), on_hand=on_hand
        )
        wait_for(
            lambda: CatalogItem.objects.filter(sku=sku, available=on_hand).exists(),
            what=f"{sku} in the storefront's catalog",
        )
        return sku

    return create


@pytest.fixture
def shared_breaker():
    """The card gateway's breaker every payments process shares (in Redis), closed before and
    after the test."""
    from django.conf import settings

    from payments import breaker

    require(bool(settings.PAYMENT_GATEWAY_BREAKER_REDIS_URL), "Redis")
    breaker.breaker_reset()
    yield breaker.breaker()
    breaker.breaker_reset()


@pytest.fixture
def stale_catalog(settings) -> Callable[[str], None]:
    """Orders' knowledge behind the other apps', for tests of the checks they make later.

    Orders refuses up front what its copy of the catalog says cannot be had and
    the destinations it knows the carrier does not serve; inventory's
    reservation and shipping check again, as that copy can be behind. Here it
    is: orders (in this process; the workers keep the real setting) believes
    the carrier goes everywhere, and ``overstate(sku)`` leaves its copy of a
    product promising more than there is, with no later news to correct it.
    """
    settings.SHIPPING_UNSERVED_COUNTRIES = []

    def overstate(sku: str) -> None:
        far_ahead = timezone.now() + timedelta(days=1)
        CatalogItem.objects.filter(sku=sku).update(available=10_000, as_of=far_ahead)

    return overstate


def place_orders(
    sku: str,
    *,
    workflows: list[str],
    email: str,
    quantity: int = 1,
    card_number: str = VALID_CARD,
    country: str = ADDRESS["country"],
) -> list:
    """One order per workflow given, placed through the service; their ids."""
    from orders.services import OrderItem, order_place

    return [
        order_place(
            email=email,
            items=[OrderItem(sku, quantity)],
            shipping_address=dict(ADDRESS, country=country),
            card_number=card_number,
            workflow=workflow,
        ).pk
        for workflow in workflows
    ]


def order_body(*, items: list[tuple[str, int]], card_number: str = VALID_CARD, **overrides) -> dict:
    body = {
        "email": "ada@example.com",
        "items": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
        "shipping_address": dict(ADDRESS),
        "card_number": card_number,
    }
    body.update(overrides)
    return body


def wait_until_closed(order_id: str, timeout: float = 60) -> Order:
    return wait_for(
        lambda: Order.objects.filter(pk=order_id, status__in=["completed", "cancelled"]).first(),
        timeout=timeout,
        what=f"order {order_id} to complete or be cancelled",
    )


@pytest.fixture
def storefront_catalog(db):
    """Two products in the storefront's catalog: one in stock, one sold out."""
    now = timezone.now()
    CatalogItem.objects.create(
        sku="MUG-1", name="Mug", price="12.50", currency="EUR", available=5, as_of=now
    )
    CatalogItem.objects.create(
        sku="PEN-2", name="Pen", price="3.00", currency="EUR", available=0, as_of=now
    )


def form_data(**overrides) -> dict:
    """The order form as a browser sends it, with a one-time token of its own."""
    data = {
        "placement_token": str(uuid.uuid4()),
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


def rabbitmqctl(*args: str) -> None:
    subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", *args],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def broker_control(rabbitmq):
    """For tests that stop the broker: whatever happens, it runs again afterwards."""
    require(shutil.which("rabbitmqctl") is not None, "rabbitmqctl")
    yield
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup", "--timeout", "120")


@pytest.fixture(scope="module")
def rabbit_cluster() -> Iterator[Cluster]:
    """Three RabbitMQ nodes of the module's own, clustered, with a vhost "shop"; killed after
    its last test (a cluster takes half a minute to start)."""
    available, why = cluster_available()
    require(available, f"a RabbitMQ cluster of the test's own ({why})")
    cluster = Cluster().start()
    try:
        cluster.add_vhost(CLUSTER_VHOST)
        yield cluster
    finally:
        cluster.close()
    assert not cluster_beams(str(cluster.root)), "a node of the cluster outlived it"

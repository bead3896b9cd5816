"""The API's lists come in pages: limit from offset, with the URLs of the pages either side."""

import pytest

from tests.orders.factories import CatalogItemFactory, OrderFactory
from tests.support.problems import problem_of

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def five_products():
    for n in range(5):
        CatalogItemFactory(sku=f"P-{n}")


def test_the_products_come_in_pages_that_link_to_each_other(client, five_products):
    first = client.get("/api/products/?limit=2").json()
    assert [p["sku"] for p in first["results"]] == ["P-0", "P-1"]
    assert (first["count"], first["previous"]) == (5, None)
    assert first["next"] == "http://testserver/api/products/?limit=2&offset=2"

    middle = client.get(first["next"])
    page = middle.json()
    assert [p["sku"] for p in page["results"]] == ["P-2", "P-3"]
    assert page["previous"] == "http://testserver/api/products/?limit=2&offset=0"
    assert middle["Link"] == (
        '<http://testserver/api/products/?limit=2&offset=4>; rel="next", '
        '<http://testserver/api/products/?limit=2&offset=0>; rel="prev"'
    )

    last = client.get(page["next"]).json()
    assert [p["sku"] for p in last["results"]] == ["P-4"]
    assert last["next"] is None


@pytest.mark.parametrize(
    "query", ["limit=101", "limit=0", "offset=-1", "offset=1000000001", "limit=many"]
)
def test_a_page_beyond_the_limits_is_refused_naming_the_parameter(client, five_products, query):
    response = client.get(f"/api/products/?{query}")

    problem = problem_of(response, status=422, path="/api/products/")
    assert list(problem["errors"]) == [query.split("=")[0]]


def test_staff_list_every_order_the_latest_first(admin_client):
    orders = [OrderFactory() for _ in range(3)]

    page = admin_client.get("/api/orders/?limit=2").json()

    assert page["count"] == 3
    assert [o["id"] for o in page["results"]] == [str(o.pk) for o in reversed(orders[1:])]
    assert page["results"][0]["status_url"] == f"http://testserver/api/orders/{orders[2].pk}/"
    assert page["next"] == "http://testserver/api/orders/?limit=2&offset=2"

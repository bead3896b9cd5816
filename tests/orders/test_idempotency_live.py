"""Idempotency-Key against a live server on PostgreSQL: requests in parallel, each on its own
thread and database connection, and a client that gives up before the answer."""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway import client as gateway
from gateway.models import CardToken
from orders.models import Order
from tests.flow.conftest import order_body
from tests.orders.factories import CatalogItemFactory
from tests.support.envelopes import published
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def catalog(transactional_db):
    CatalogItemFactory(sku="MUG-1", name="Mug", available=50)
    return "MUG-1"


@pytest.fixture
def slow_tokenizing(monkeypatch):
    """The gateway takes ``seconds`` to tokenize a card: a request is placing its order
    that long, so that others under its key arrive meanwhile."""

    def slow(seconds: float) -> threading.Event:
        tokenize, started = gateway.tokenize, threading.Event()

        def slowly(**kwargs):
            started.set()
            time.sleep(seconds)
            return tokenize(**kwargs)

        monkeypatch.setattr(gateway, "tokenize", slowly)
        return started

    return slow


def post(url: str, body: dict, key: str, timeout: float = 30) -> tuple[int, dict, dict]:
    request = urllib.request.Request(  # noqa: S310 (the live server's http URL)
        f"{url}/api/orders/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


def test_ten_parallel_posts_with_one_key_make_one_order(live_server, catalog, slow_tokenizing):
    slow_tokenizing(0.5)
    body, key = order_body(items=[(catalog, 1)]), str(uuid.uuid4())
    start = threading.Barrier(10)

    def one_client(_):
        start.wait()
        return post(live_server.url, body, key)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(one_client, range(10)))

    assert [status for status, _, _ in answers] == [202] * 10, answers
    assert len({json.dumps(answer) for _, _, answer in answers}) == 1
    assert len({headers["Location"] for _, headers, _ in answers}) == 1
    assert sorted(headers["Idempotent-Replayed"] for _, headers, _ in answers) == (
        ["false"] + ["true"] * 9
    )
    assert [str(pk) for pk in Order.objects.values_list("pk", flat=True)] == [answers[0][2]["id"]]
    assert CardToken.objects.count() == 1
    assert len(published("OrderPlaced")) == 1


def test_a_retry_after_the_client_timed_out_returns_the_first_order(
    live_server, catalog, slow_tokenizing
):
    slow_tokenizing(2)
    body, key = order_body(items=[(catalog, 1)]), str(uuid.uuid4())
    # Given a client that gave up waiting for its answer
    with pytest.raises(TimeoutError):
        post(live_server.url, body, key, timeout=0.5)
    # while the server went on and placed the order
    placed = wait_for(Order.objects.first, timeout=10, what="the first request's order")

    # When it retries, as it should, with the same key and body
    status, headers, answer = post(live_server.url, body, key)

    # Then it is told of the first order, and none other is placed
    assert status == 202, answer
    assert answer["id"] == str(placed.pk)
    assert headers["Location"] == answer["status_url"]
    assert headers["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert CardToken.objects.count() == 1
    assert len(published("OrderPlaced")) == 1


def test_a_retry_that_waits_too_long_on_the_first_is_told_to_retry(
    live_server, catalog, slow_tokenizing, monkeypatch
):
    monkeypatch.setattr("orders.idempotency.KEY_WAIT_SECONDS", 1)
    placing = slow_tokenizing(4)
    body, key = order_body(items=[(catalog, 1)]), str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Given a first request that has claimed the key and is placing its order
        first = pool.submit(post, live_server.url, body, key)
        assert placing.wait(timeout=10)

        # When a retry waits on it for longer than it may
        status, headers, problem = post(live_server.url, body, key)

        # Then it is told the key is in use, and when to come back
        assert status == 409, problem
        assert headers["Retry-After"] == "1"
        assert problem["type"] == "/api/problems/idempotency-key-in-flight"
        assert first.result()[0] == 202
    assert Order.objects.count() == 1

"""Redis goes away under the push: streams say so and end, new ones are refused, and both come back.

The Redis here is a redis-server of the test's own (the machine's is never
stopped), which the streaming server and the publisher use.
"""

from __future__ import annotations

import pytest

from tests.flow.conftest import place_orders, wait_until_closed
from tests.support.live import LiveStack
from tests.support.redis import RedisServer
from tests.support.sse import SseClient
from tests.support.waiting import wait_for
from tests.support.workers import worker_env

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def own_redis(tmp_path, redis_server_program):
    server = RedisServer(tmp_path, appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def stack_on_own_redis(app_workers, own_redis, django_db_blocker, rabbitmq):
    stack = LiveStack(worker_env(rabbitmq, django_db_blocker), own_redis.url)
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_without_redis_streams_end_saying_so_and_the_push_returns_with_it(
    stack_on_own_redis, own_redis, stock
):
    stack = stack_on_own_redis
    sku = stock(on_hand=5)
    [before] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
    open_stream = SseClient(stack.order_stream(before))
    wait_for(lambda: open_stream.named("timeline"), timeout=10, what="the timeline")

    own_redis.kill()
    assert open_stream.ended.wait(10), "a stream must not hang on once Redis is gone"
    assert open_stream.named("unavailable"), "the page must be told to poll"
    refused = SseClient(stack.order_stream(before), timeout=10)
    assert refused.status == 503
    assert "unavailable" in refused.body

    # Orders go on without Redis: the push is never in their way.
    [during] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
    assert wait_until_closed(during).status == "completed"

    own_redis.start()
    wait_for(lambda: SseClient(stack.order_stream(during), timeout=10).status == 200,
             timeout=20, what="the stream to be served again")  # fmt: skip
    back = SseClient(stack.order_stream(during))
    try:
        wait_for(lambda: back.named("timeline"), timeout=10, what="the timeline")
    finally:
        back.close()
    caught_up = [step["type"] for step in back.named("timeline")[0].data["steps"]]
    assert "OrderCompleted" in caught_up


def test_with_the_publisher_gone_streams_say_so_rather_than_wait_on_a_silent_push(
    stack_on_own_redis, stock
):
    stack = stack_on_own_redis
    sku = stock(on_hand=5)
    [order_id] = place_orders(sku, workflows=["choreography"], email="ada@example.com")
    open_stream = SseClient(stack.order_stream(order_id))
    wait_for(lambda: open_stream.named("timeline"), timeout=10, what="the timeline")

    stack.publisher.stop()
    assert open_stream.ended.wait(20), "the stream must end once nothing publishes"
    assert open_stream.named("unavailable")
    refused = SseClient(stack.order_stream(order_id), timeout=10)
    assert refused.status == 503
    assert "live_push" in refused.body

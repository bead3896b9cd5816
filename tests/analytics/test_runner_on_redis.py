"""The aggregates' stream processor on the Redis log: killed with kill -9 and started again, it
ends with the figures a replay of the log gives, each order counted once."""

import io
import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum

from analytics.aggregates import Aggregates
from analytics.models import MinuteFigure, ProcessorState, Slot
from analytics.replay import projection_replay
from messaging.eventlog.redis import RedisLog
from messaging.publishing import dispatch_together, publish
from payments.events import PaymentProcessed
from tests.support.broker import purge_queues
from tests.support.order_messages import (
    OrderCancelledFactory,
    OrderCompletedFactory,
    OrderPlacedFactory,
)
from tests.support.paths import ROOT
from tests.support.waiting import wait_for
from tests.support.workers import APP_QUEUES, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_log(rabbitmq, redis_url, settings):
    settings.EVENT_LOG_BACKEND = "redis"
    log = RedisLog()
    log.client.delete(log.key)
    yield log
    log.client.delete(log.key)
    # The events' copies for the apps' queues, which no worker reads here.
    purge_queues(APP_QUEUES)


@pytest.fixture
def processor_env(rabbitmq, redis_url, redis_log, django_db_blocker) -> dict[str, str]:
    return {
        **worker_env(rabbitmq, django_db_blocker),
        "EVENT_LOG_BACKEND": "redis",
        "EVENT_LOG_REDIS_URL": redis_url,
    }


class StreamProcessor:
    """``manage.py stream_processor --only aggregates`` as its own process."""

    def __init__(self, env: dict[str, str], log_path) -> None:
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "stream_processor", "--only", "aggregates"],
            cwd=ROOT, env=env, stdout=log_path.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def orders_published(count: int) -> None:
    """Orders placed, paid and completed (every fifth cancelled), each through the dispatch."""
    for n in range(count):
        placed = OrderPlacedFactory()
        with dispatch_together(), transaction.atomic():
            publish(placed)
            publish(
                PaymentProcessed(
                    order_id=placed.order_id,
                    payment_id=uuid.uuid4(),
                    amount=placed.total,
                    currency="EUR",
                )
            )
            if n % 5 == 4:
                publish(OrderCancelledFactory(order_id=placed.order_id))
            else:
                publish(OrderCompletedFactory(order_id=placed.order_id))


def committed_offset() -> int | None:
    state = ProcessorState.objects.filter(processor=Aggregates.name, slot=Slot.LIVE).first()
    return state.offset if state else None


def figure(metric: str) -> Decimal:
    total = MinuteFigure.objects.filter(slot=Slot.LIVE, metric=metric).aggregate(s=Sum("value"))
    return total["s"] or Decimal(0)


def test_killed_and_restarted_it_keeps_the_figures_a_replay_gives(
    redis_log, processor_env, tmp_path
):
    log_path = tmp_path / "stream_processor.log"
    # given a processor reading events as they are dispatched
    orders_published(40)
    first = StreamProcessor(processor_env, log_path)
    try:
        wait_for(committed_offset, what="the processor's first commit")
        # when it is killed with kill -9 while events keep coming
        orders_published(40)
        first.kill()
    finally:
        first.stop()
    killed_at = committed_offset()
    orders_published(40)

    # and started again
    second = StreamProcessor(processor_env, log_path)
    try:
        head = redis_log.head()
        wait_for(
            lambda: committed_offset() == head,
            timeout=60,
            what=f"the processor to reach the head:\n{log_path.read_text()}",
        )
    finally:
        second.stop()

    # then it resumed where it had committed, and counted each order once
    assert killed_at is not None and killed_at < head
    assert figure("orders_placed") == 120
    assert figure("payments_succeeded") == 120
    assert figure("orders_completed") == 96
    assert figure("orders_cancelled") == 24
    # and its figures are those a replay of the whole log rebuilds
    replayed = projection_replay(Aggregates, start="first", log=RedisLog())
    assert replayed.offset == head
    assert replayed.same, [t for t in replayed.tables if not t.same]
    # as replay_events says too, its progress counted in entries, not offsets
    out, err = io.StringIO(), io.StringIO()
    call_command("replay_events", "--projection", "aggregates", stdout=out, stderr=err)
    assert f"Replayed 360 entries up to offset {head}. Shadow and live are the same." in (
        out.getvalue()
    )
    assert "360/360" in err.getvalue()

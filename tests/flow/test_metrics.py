"""Prometheus metrics after a run of orders: what the web and every worker count is what happened.

Real workers (one per app queue, each a main process and a pool child that
count in their group's files), orders placed by this process (the web, read
through the Django test client), scraped as Prometheus would and parsed by
prometheus_client's own parser. Workers outlive a test, so each figure is
compared as the difference between a scrape before the orders and one after
them with the rows the database gained meanwhile.
"""

from __future__ import annotations

import re
import urllib.request
from collections import Counter

import pytest
from django.db.models import Count
from prometheus_client.parser import text_string_to_metric_families

from messaging.models import DeadLetter, InboxRecord, OutboxMessage
from orders.models import OrderSaga
from tests.flow.conftest import place_orders, wait_until_closed
from tests.messaging.test_dead_letters import send_raw
from tests.support.broker import queue_depths
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.workers import APP_QUEUES, WorkerProcess, consumer_paused

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

DECLINED_CARD = "4000 0000 0000 0002"
TIMEOUT_CARD = "4000 0000 0000 0119"
BOTH = ["choreography", "orchestration"]
EXPORTER_LINE = re.compile(r"serves its metrics on (http://\S+/metrics)")

# A sample: its name and its labels, as a hashable key.
Key = tuple[str, frozenset]


def parsed(text: str) -> dict[Key, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def exporter_url(worker: WorkerProcess) -> str:
    found = [m.group(1) for line in worker.lines if (m := EXPORTER_LINE.search(line))]
    assert found, f"{worker.name} did not say where it serves its metrics:\n{worker.log()}"
    return found[-1]


def scrape_worker(worker: WorkerProcess) -> dict[Key, float]:
    with urllib.request.urlopen(exporter_url(worker), timeout=10) as response:  # noqa: S310
        return parsed(response.read().decode())


def scrape_web(client) -> dict[Key, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return parsed(response.content.decode())


def scrape_all(client, workers: dict[str, WorkerProcess]) -> list[dict[Key, float]]:
    return [scrape_web(client), *(scrape_worker(worker) for worker in workers.values())]


def totals(scrapes: list[dict[Key, float]], name: str, by: str, **where: str) -> Counter:
    """The samples called ``name`` added up over every scrape, per value of the label ``by``."""
    summed: Counter = Counter()
    for samples in scrapes:
        for (sample, labels), value in samples.items():
            labels = dict(labels)
            if sample == name and all(labels.get(k) == v for k, v in where.items()):
                summed[labels.get(by)] += value
    return summed


def gained(after: Counter, before: Counter) -> Counter:
    return Counter({key: after[key] - before[key] for key in after if after[key] != before[key]})


def database_counts() -> dict[str, Counter]:
    return {
        "handled": Counter(
            dict(InboxRecord.objects.values_list("handler").annotate(n=Count("id")))
        ),
        "published": Counter(
            dict(OutboxMessage.objects.values_list("type").annotate(n=Count("id")))
        ),
        "confirmed": Counter(
            dict(
                OutboxMessage.objects.filter(dispatched_at__isnull=False)
                .values_list("type")
                .annotate(n=Count("id"))
            )
        ),
        "dead_letters": Counter(
            dict(DeadLetter.objects.values_list("reason").annotate(n=Count("id")))
        ),
    }


def metric_counts(scrapes) -> dict[str, Counter]:
    return {
        "handled": totals(scrapes, "eventshop_deliveries_total", "handler", outcome="handled"),
        "timed": totals(scrapes, "eventshop_handler_duration_seconds_count", "handler"),
        "retried": totals(scrapes, "eventshop_deliveries_total", "handler", outcome="retried"),
        "published": totals(scrapes, "eventshop_messages_published_total", "type"),
        "confirmed": totals(scrapes, "eventshop_messages_confirmed_total", "type"),
        "dead_letters": totals(scrapes, "eventshop_dead_letters_total", "reason"),
        "dead_letter_handlers": totals(scrapes, "eventshop_dead_letters_total", "handler"),
    }


def test_the_counters_of_web_and_workers_match_the_database_after_a_run_of_orders(
    client, stock, app_workers
):
    # Given a product, workers with nothing left to do, and what everyone counted so far
    sku = stock(on_hand=20)
    wait_until_quiet(APP_QUEUES)
    metrics_before = metric_counts(scrape_all(client, app_workers))
    rows_before = database_counts()

    # When orders are placed under both workflows, some with a declined card and one with a card
    # the gateway times out on twice, and a message no handler can read reaches payments
    orders = [
        *place_orders(sku, workflows=BOTH, email="paid@example.com"),
        *place_orders(sku, workflows=BOTH, email="declined@example.com", card_number=DECLINED_CARD),
        *place_orders(
            sku, workflows=["choreography"], email="slow@example.com", card_number=TIMEOUT_CARD
        ),
    ]
    send_raw(
        queue="payments",
        body=b"{not json",
        content_type="application/json",
        task="payments.charge_for_order",
    )
    closed = [wait_until_closed(order_id) for order_id in orders]
    wait_for(lambda: DeadLetter.objects.filter(reason="undecodable").exists(), what="a dead letter")
    wait_until_quiet(APP_QUEUES)
    scrapes = scrape_all(client, app_workers)
    metrics, rows = metric_counts(scrapes), database_counts()

    # Then some completed and some were cancelled
    assert Counter(order.status for order in closed) == {"completed": 3, "cancelled": 2}

    # and the deliveries that took effect, per handler, are the inbox's records, each one timed
    handled = gained(metrics["handled"], metrics_before["handled"])
    assert handled == gained(rows["handled"], rows_before["handled"])
    assert gained(metrics["timed"], metrics_before["timed"]) == handled
    assert handled["payments.charge_for_order"] == 3

    # and the card that timed out twice was retried twice
    retried = gained(metrics["retried"], metrics_before["retried"])
    assert retried == {"payments.charge_for_order": 2}

    # and what web and workers published and the broker confirmed are the outbox's rows
    published = gained(metrics["published"], metrics_before["published"])
    assert published == gained(rows["published"], rows_before["published"])
    assert published["OrderPlaced"] == len(orders)
    confirmed = gained(metrics["confirmed"], metrics_before["confirmed"])
    assert confirmed == gained(rows["confirmed"], rows_before["confirmed"]) == published

    # and the dead letter is counted, by the worker's main process, for the handler it named
    dead = gained(metrics["dead_letters"], metrics_before["dead_letters"])
    assert dead == gained(rows["dead_letters"], rows_before["dead_letters"]) == {"undecodable": 1}
    handlers = gained(metrics["dead_letter_handlers"], metrics_before["dead_letter_handlers"])
    assert handlers == {"payments.charge_for_order": 1}

    # and the web's gauges say what the database and the broker say now: nothing left
    web = scrape_web(client)
    assert web[("eventshop_outbox_pending_messages", frozenset())] == 0
    assert all(web[("eventshop_queue_depth", frozenset({("queue", q)}))] == 0 for q in APP_QUEUES)
    assert web[("eventshop_queue_consumers", frozenset({("queue", "payments")}))] == 1
    assert web[("eventshop_gateway_breaker_state", frozenset({("state", "closed")}))] == 1


def test_the_webs_gauges_show_an_order_waiting_in_its_queue_and_its_saga_running(
    client, stock, app_workers
):
    # Given payments' worker held off its queue
    sku = stock(on_hand=5)
    with consumer_paused(app_workers["payments"], "payments"):
        # When an orchestrated order is placed, and its charge waits in the payments queue
        [order_id] = place_orders(sku, workflows=["orchestration"], email="wait@example.com")
        wait_for(lambda: queue_depths(["payments"])["payments"] == 1, what="the charge queued")
        web = scrape_web(client)

        # Then the web's gauges show it waiting, and its saga running, as the database says
        assert web[("eventshop_queue_depth", frozenset({("queue", "payments")}))] == 1
        assert web[("eventshop_queue_consumers", frozenset({("queue", "payments")}))] == 0
        by_state = Counter(dict(OrderSaga.objects.values_list("state").annotate(n=Count("pk"))))
        for state in ("running", "compensating", "needs_attention"):
            sample = web[("eventshop_sagas", frozenset({("state", state)}))]
            assert sample == by_state[state], state
        assert by_state["running"] == 1
        assert web[("eventshop_outbox_pending_messages", frozenset())] == 0

    # and once payments is back it goes on to the end
    assert wait_until_closed(order_id).status == "completed"

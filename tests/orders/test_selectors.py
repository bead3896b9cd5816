"""Reads of orders: the orders stuck open past an age."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.events import OrderScreened, Verdict
from messaging.publishing import publish
from orders.models import Order
from orders.selectors import stuck_orders, stuck_orders_count
from tests.orders.factories import OrderFactory, OrderSagaFactory

pytestmark = pytest.mark.django_db

AGE = timedelta(minutes=5)


def placed_ago(order: Order, minutes: int) -> Order:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))
    return order


def test_stuck_orders_are_the_open_ones_past_the_age_oldest_first_limited_if_asked():
    # Given open orders of each status, closed orders and a recent one
    oldest = placed_ago(OrderFactory(status=Order.Status.PLACED), 60)
    paid = placed_ago(OrderFactory(status=Order.Status.PAID), 50)
    saga = OrderSagaFactory(reserving=True)
    placed_ago(saga.order, 40)
    shipped = placed_ago(OrderFactory(status=Order.Status.SHIPPED), 30)
    placed_ago(OrderFactory(completed=True), 90)
    placed_ago(OrderFactory(cancelled=True), 90)
    OrderFactory(status=Order.Status.PLACED)

    # When the stuck orders are read, all of them and the oldest two
    every = stuck_orders(older_than=AGE)
    first_two = stuck_orders(older_than=AGE, limit=2)

    # Then they are the open orders past the age, oldest first, with what each waits on
    assert [row.order.pk for row in every] == [oldest.pk, paid.pk, saga.order.pk, shipped.pk]
    assert [row.waiting_on for row in every] == [
        "payments: charge the card",
        "inventory: reserve stock",
        "saga: Reserve Inventory (Running)",
        "orders: complete the order",
    ]
    assert [row.order.pk for row in first_two] == [oldest.pk, paid.pk]
    assert stuck_orders_count(older_than=AGE) == 4


def test_with_fraud_screening_a_placed_order_waits_on_its_verdict_until_it_comes(settings):
    settings.FRAUD_SCREENING = True
    waiting = placed_ago(OrderFactory(status=Order.Status.PLACED), 60)
    screened = placed_ago(OrderFactory(status=Order.Status.PLACED), 50)
    publish(OrderScreened(order_id=screened.pk, verdict=Verdict.CLEARED),
            correlation_id=str(screened.pk))  # fmt: skip

    waits = {row.order.pk: row.waiting_on for row in stuck_orders(older_than=AGE)}

    assert waits == {
        waiting.pk: "analytics: the fraud screen's verdict (is stream_processor running?)",
        screened.pk: "payments: charge the card",
    }
    settings.FRAUD_SCREENING = False
    assert {row.waiting_on for row in stuck_orders(older_than=AGE)} == {"payments: charge the card"}

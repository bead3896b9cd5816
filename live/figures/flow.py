"""Orders in flight: open sagas by state, and orders stuck past STUCK_ORDER_AGE (admin links)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.urls import reverse

from orders.models import OrderSaga
from orders.selectors import stuck_orders, stuck_orders_count

from .formats import age, moment

STUCK_LISTED = 10


# A saga that ended is history, and there are as many as orchestrated orders: only those
# still going are counted (on the state index); the ended ones are in the orders figures.
OPEN_SAGA_STATES = [
    OrderSaga.State.RUNNING,
    OrderSaga.State.COMPENSATING,
    OrderSaga.State.NEEDS_ATTENTION,
]


def sagas() -> dict:
    """How many orchestrated orders' sagas are in each open state (zero included)."""
    counts = dict(
        OrderSaga.objects.filter(state__in=OPEN_SAGA_STATES)
        .values_list("state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {
        "by_state": {state.value: counts.get(state.value, 0) for state in OPEN_SAGA_STATES},
        "labels": {state.value: state.label for state in OPEN_SAGA_STATES},
        "admin_url": reverse("admin:orders_ordersaga_changelist"),
    }


def stuck(*, now: datetime) -> dict:
    """How many orders are stuck, and the oldest STUCK_LISTED of them with what they wait on."""
    older_than = timedelta(seconds=settings.STUCK_ORDER_AGE)
    return {
        "count": stuck_orders_count(older_than=older_than),
        "older_than_seconds": settings.STUCK_ORDER_AGE,
        "page_url": reverse("orders:stuck"),
        "oldest": [
            {
                "id": str(row.order.pk),
                "status": row.order.status,
                "workflow": row.order.workflow,
                "created_at": moment(row.order.created_at),
                "age_seconds": age(row.order.created_at, now),
                "waiting_on": row.waiting_on,
                "admin_url": reverse("admin:orders_order_change", args=[row.order.pk]),
            }
            for row in stuck_orders(older_than=older_than, limit=STUCK_LISTED)
        ],
    }

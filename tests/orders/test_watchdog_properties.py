"""Property: whatever steps are dead-lettered or put off by an outage, every order ends.

Hypothesis draws a product's stock, a batch of orders (workflow, card,
quantity), dead letters at forward steps of some of them, a card-gateway
outage over some stretch, the order in which the apps' queues are served,
one app's worker stopped over some stretch (perhaps past the deadline),
and the moment the orders' deadline passes. Then every order must end,
money captured minus refunded must equal the total of the completed orders,
and stock must be conserved.

It drives the handlers in this process, at unit level, with no broker and
no worker, so that it can run many examples quickly: each message published
(an outbox row) is queued for each of its subscribers on its app's queue,
served first in, first out; a handler that fails is queued again; a
dead-lettered delivery is dropped; while the gateway is down, payments'
deliveries are put off (DependencyUnavailable, announced as the backbone
does). The delivery itself (retries, the inbox, the broker) is tested
against the real RabbitMQ elsewhere (tests/flow/test_order_deadline.py).
"""

from __future__ import annotations

import uuid
from collections import deque
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pybreaker
import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from inventory import services as inventory
from inventory.models import Product
from messaging.context import handling
from messaging.delivery import inbox_claim
from messaging.errors import DependencyUnavailable
from messaging.messages import Envelope, registry
from messaging.models import OutboxMessage
from messaging.signals import delivery_retried, notify
from messaging.subscriptions import Handler, subscribers
from orders.models import CatalogItem, Order
from orders.saga import saga_check_deadlines
from orders.services import OrderItem, order_place
from orders.watchdog import GRACE, order_watchdog_sweep
from payments import breaker
from payments.models import Payment
from shipping.models import Shipment

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

PRICE = Decimal("7.00")
ADDRESS = {"name": "A", "line1": "1 Road", "city": "Paris", "postal_code": "75001", "country": "FR"}
CARDS = ["4242424242424242", "4242424242424242", "4000000000000002"]
# The forward steps a dead letter may hit: the undoing ones are staff's to redrive.
FORWARD_STEPS = [
    "payments.charge_for_order",
    "payments.charge_payment",
    "inventory.reserve_stock",
    "inventory.reserve_inventory",
    "shipping.ship_reserved_order",
    "shipping.create_shipment",
    "orders.mark_paid",
    "orders.mark_reserved",
    "orders.advance_saga",
]
# Deliveries served before the gateway comes back for good and the queues are drained.
MAX_STEPS = 80
# A delivery that keeps failing (its lines have not arrived, say) goes to the dead letters.
MAX_ATTEMPTS = 6

an_order = st.fixed_dictionaries(
    {
        "workflow": st.sampled_from(["choreography", "orchestration"]),
        "card": st.sampled_from(CARDS),
        "quantity": st.integers(min_value=1, max_value=3),
        "dead_letter": st.one_of(st.none(), st.sampled_from(FORWARD_STEPS)),
    }
)


class Clock:
    """timezone.now() as the test moves it: the orders' deadline passes when it says.

    Each reading is a microsecond after the last, so that rows made one after
    the other sort in that order, in every run of an example alike.
    """

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self):
        self.now += timedelta(microseconds=1)
        return self.now


class Queues:
    """Each app's queue in this process: the outbox's new rows, delivered to their subscribers."""

    def __init__(self, *, dead_letters: dict[str, set[str]]) -> None:
        self.queues: dict[str, deque[tuple[Handler, Envelope, int]]] = {}
        self.last_row = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first()
        # Correlation id -> the handlers whose next delivery for it dies.
        self.dead_letters = dead_letters
        self.is_gateway_down = False
        self.deferrals: dict[tuple[str, uuid.UUID], int] = {}

    def collect(self) -> None:
        rows = OutboxMessage.objects.order_by("id")
        if self.last_row is not None:
            rows = rows.filter(id__gt=self.last_row)
        for row in rows:
            self.last_row = row.id
            envelope = row.to_envelope()
            for handler in subscribers(envelope):
                self.queues.setdefault(handler.queue, deque()).append((handler, envelope, 0))

    def busy(self) -> list[str]:
        self.collect()
        return sorted(name for name, queue in self.queues.items() if queue)

    def serve(self, queue: str) -> None:
        """Deliver the next message of one queue, as a worker would."""
        handler, envelope, attempts = self.queues[queue].popleft()
        dying = self.dead_letters.get(envelope.correlation_id, set())
        if handler.name in dying:
            dying.discard(handler.name)
            return  # dead-lettered: it never takes effect
        message = registry.read(envelope)
        try:
            with transaction.atomic(), handling(envelope):
                if inbox_claim(message_id=envelope.message_id, handler_name=handler.name):
                    handler.fn(message, envelope)
        except DependencyUnavailable:
            key = (handler.name, envelope.message_id)
            self.deferrals[key] = self.deferrals.get(key, 0) + 1
            notify(
                delivery_retried, handler=handler.name, envelope=envelope, attempt=attempts + 1,
                countdown=1.0, queue=queue, deferred=True, deferrals=self.deferrals[key],
            )  # fmt: skip
            self.queues[queue].append((handler, envelope, attempts))
        except Exception:
            if attempts + 1 < MAX_ATTEMPTS:
                self.queues[queue].append((handler, envelope, attempts + 1))

    def gateway_call(self, real_call):
        def call(fn, *args, **kwargs):
            if self.is_gateway_down:
                raise DependencyUnavailable("the card gateway's breaker is open", retry_in=1.0)
            return real_call(fn, *args, **kwargs)

        return call


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    on_hand=st.integers(min_value=0, max_value=6),
    orders=st.lists(an_order, min_size=1, max_size=4),
    outage=st.tuples(st.integers(0, 15), st.integers(0, 20), st.booleans()),
    app_down=st.tuples(
        st.sampled_from(["payments", "inventory", "shipping"]), st.integers(0, 20), st.booleans()
    ),
    deadline_after=st.integers(min_value=0, max_value=80),
    data=st.data(),
)
def test_every_order_ends_and_money_and_stock_add_up(
    on_hand, orders, outage, app_down, deadline_after, data
):
    sku = f"W-{uuid.uuid4().hex[:8].upper()}"
    clock = Clock()
    with ExitStack() as stack:
        # Each example starts from the same rows: what one wrote is rolled back after it.
        for database in ("default", "gateway"):
            stack.enter_context(transaction.atomic(using=database))
            stack.callback(transaction.set_rollback, True, using=database)
        stack.enter_context(mock.patch("django.utils.timezone.now", clock))
        fresh = breaker.GatewayBreaker(pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED))
        stack.enter_context(mock.patch.object(breaker, "breaker", lambda: fresh))
        # Given a product, and orders' copy of the catalog promising more than there is
        inventory.product_save(sku=sku, name="Watchdog", price=PRICE, on_hand=on_hand)
        CatalogItem.objects.update_or_create(
            sku=sku,
            defaults={"name": "Watchdog", "price": PRICE, "currency": "EUR", "available": 1000,
                      "as_of": clock.now + timedelta(days=1)},
        )  # fmt: skip
        queues = Queues(dead_letters={})
        stack.enter_context(mock.patch.object(breaker, "call", queues.gateway_call(breaker.call)))
        ids = []
        for spec in orders:
            order = order_place(
                email="w@example.com", items=[OrderItem(sku, spec["quantity"])],
                shipping_address=ADDRESS, card_number=spec["card"], workflow=spec["workflow"],
            )  # fmt: skip
            ids.append(order.pk)
            if spec["dead_letter"]:
                queues.dead_letters[str(order.pk)] = {spec["dead_letter"]}
        outage_starts, outage_lasts, outage_outlives_deadline = outage
        down_queue, down_from, down_past_deadline = app_down

        # When the queues are served in a drawn order, the gateway going down for a
        # while, and the orders' deadline passing at a drawn step
        step, is_past_deadline = 0, False
        deadline = max(order.deadline for order in Order.objects.filter(pk__in=ids))
        while (busy := queues.busy()) and step < MAX_STEPS:
            queues.is_gateway_down = outage_starts <= step and (
                step < outage_starts + outage_lasts or outage_outlives_deadline
            )
            # One app's worker is stopped for a while, perhaps until after the deadline.
            is_down = down_from <= step and (
                step < down_from + 15 or (down_past_deadline and not is_past_deadline)
            )
            serving = [name for name in busy if not (is_down and name == down_queue)]
            if not is_past_deadline and (step >= deadline_after or not serving):
                # The deadline passes (time goes by while only a stopped app has work).
                clock.now = deadline + GRACE + timedelta(seconds=1)
                order_watchdog_sweep()
                is_past_deadline = True
                continue
            saga_check_deadlines()
            queues.serve(data.draw(st.sampled_from(serving or busy), label="queue"))
            step += 1
        # then whatever is still open meets its deadline, and the gateway comes back
        clock.now = max(clock.now, deadline + GRACE + timedelta(seconds=1))
        queues.is_gateway_down = False
        for _ in range(20):
            order_watchdog_sweep()
            saga_check_deadlines()
            while busy := queues.busy():
                queues.serve(busy[0])
            if Order.objects.filter(
                pk__in=ids, status__in=["completed", "cancelled"]
            ).count() == len(ids):
                break
            clock.now += timedelta(minutes=5)

        # (--hypothesis-show-statistics shows the mix of endings the examples reached)
        for ended in Order.objects.filter(pk__in=ids):
            event(f"{ended.workflow} {ended.status} {ended.cancel_reason_code}".strip())
        event("an outage put payments off" if queues.deferrals else "no payment put off")
        # Then every order ended,
        placed = Order.objects.filter(pk__in=ids)
        assert set(placed.values_list("status", flat=True)) <= {"completed", "cancelled"}
        assert not placed.exclude(attention_reason="").exists()
        # money captured minus refunded is the total of the completed orders,
        completed = placed.filter(status="completed")
        completed_total = completed.aggregate(s=Sum("total"))["s"] or 0
        payments = Payment.objects.filter(order_id__in=ids)
        captured = payments.filter(status__in=["captured", "refunded"]).aggregate(s=Sum("amount"))
        refunded = payments.aggregate(s=Sum("amount_refunded"))["s"] or 0
        assert (captured["s"] or 0) - refunded == completed_total
        # stock is conserved, nothing stays reserved, and what left is what completed orders bought,
        product = Product.objects.get(sku=sku)
        bought = sum(line.quantity for o in completed for line in o.lines.all())
        assert (product.on_hand + product.shipped, product.reserved) == (on_hand, 0)
        assert product.shipped == bought
        # and a parcel left for each completed order, none for a cancelled one.
        shipped = set(
            Shipment.objects.filter(order_id__in=ids, status="created").values_list(
                "order_id", flat=True
            )
        )
        assert shipped == set(completed.values_list("pk", flat=True))

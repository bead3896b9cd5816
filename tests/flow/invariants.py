"""The books every order flow must balance, whatever went wrong on the way."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Sum

from gateway.models import Charge
from inventory.models import Product
from notifications.models import SentEmail
from orders.models import Order, OrderLine
from payments.models import Payment
from shipping.models import Shipment
from tests.support.waiting import wait_for


@dataclass(frozen=True)
class Tally:
    placed: int
    completed: int
    cancelled: int

    def __str__(self) -> str:
        return f"{self.placed} placed, {self.completed} completed, {self.cancelled} cancelled"


def wait_until_all_closed(ids: list, *, timeout: float = 120, while_waiting=None) -> None:
    def closed() -> bool:
        if while_waiting is not None:
            while_waiting()
        ended = Order.objects.filter(pk__in=ids, status__in=["completed", "cancelled"]).count()
        return ended == len(ids)

    wait_for(closed, timeout=timeout, what=f"all {len(ids)} orders to complete or be cancelled")


def assert_books_balance(ids: list, stock: dict[str, int]) -> Tally:
    """Every order ended; money, stock and effects add up. ``stock``: sku -> initial on hand."""
    placed = Order.objects.filter(pk__in=ids)
    assert placed.count() == len(ids), "an order that was accepted is missing"
    statuses = Counter(placed.values_list("status", flat=True))
    assert set(statuses) <= {"completed", "cancelled"}, f"orders left open: {statuses}"
    completed = placed.filter(status="completed")
    completed_total = completed.aggregate(s=Sum("total"))["s"] or 0

    # A cancelled order's money goes back after it ended: a charge under way
    # when it was cancelled commits first, then is refunded.
    payments = Payment.objects.filter(order_id__in=ids)
    wait_for(
        lambda: (
            not payments.filter(
                order_id__in=placed.filter(status="cancelled").values("pk"),
                status__in=["processing", "captured"],
            ).exists()
        ),
        what="the money of cancelled orders to go back",
    )
    # Money captured minus money refunded equals the total of completed orders,
    captured = payments.filter(status__in=["captured", "refunded"]).aggregate(s=Sum("amount"))["s"]
    refunded = payments.aggregate(s=Sum("amount_refunded"))["s"]
    kept = (captured or 0) - (refunded or 0)
    assert kept == completed_total, f"kept {kept}, completed orders total {completed_total}"
    # and the gateway agrees.
    charges = Charge.objects.filter(idempotency_key__in=[f"order-{pk}" for pk in ids])
    at_gateway = charges.filter(status="succeeded").aggregate(s=Sum("amount"))["s"] or 0
    back = charges.aggregate(s=Sum("refunded"))["s"] or 0
    assert at_gateway - back == completed_total, (
        f"the gateway kept {at_gateway - back}, completed orders total {completed_total}"
    )

    # Stock on hand plus stock shipped is conserved, never negative, nothing
    # stays reserved, and what shipped is what completed orders bought.
    wait_for(
        lambda: not Product.objects.filter(sku__in=stock, reserved__gt=0).exists(),
        what="reservations of cancelled orders to be released",
    )
    shipped_lines = Counter()
    for sku, quantity in OrderLine.objects.filter(order__in=completed).values_list(
        "sku", "quantity"
    ):
        shipped_lines[sku] += quantity
    for product in Product.objects.filter(sku__in=stock):
        assert product.on_hand >= 0
        assert product.on_hand + product.shipped == stock[product.sku], product.sku
        assert product.shipped == shipped_lines[product.sku], product.sku

    # Every effect happened once.
    assert payments.count() == len(ids), f"{payments.count()} payments of {len(ids)} orders"
    assert charges.count() <= len(ids), f"{charges.count()} charges of {len(ids)} orders"
    assert not _repeated(Shipment.objects.filter(order_id__in=ids), "order_id")
    assert not _repeated(SentEmail.objects.filter(order_id__in=ids), "order_id", "kind")
    for order in completed:
        assert Shipment.objects.get(order_id=order.pk).tracking_number
    return Tally(len(ids), statuses["completed"], statuses["cancelled"])


def _repeated(queryset, *fields: str) -> list:
    return list(queryset.values(*fields).annotate(n=Count("id")).filter(n__gt=1))

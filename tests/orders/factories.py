"""Orders' rows as a test needs them, and the replies the other apps send about an order."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from messaging.messages import Message
from orders.events import Workflow
from orders.models import CatalogItem, Order, OrderLine, OrderSaga

Status = Order.Status
State = OrderSaga.State
Step = OrderSaga.Step


class CatalogItemFactory(DjangoModelFactory):
    class Meta:
        model = CatalogItem

    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")
    currency = "EUR"
    available = 10
    is_active = True
    as_of = factory.LazyFunction(timezone.now)


class OrderFactory(DjangoModelFactory):
    """An order of one line (two at 10.00), placed by choreography unless ``orchestrated``."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    class Params:
        orchestrated = factory.Trait(workflow=Workflow.ORCHESTRATION)
        cancelled = factory.Trait(
            status=Status.CANCELLED,
            cancel_reason_code="card_declined",
            cancel_reason="Payment failed: Your card was declined.",
            closed_at=factory.LazyFunction(timezone.now),
        )
        completed = factory.Trait(
            status=Status.COMPLETED,
            payment_status=Order.PaymentStatus.CAPTURED,
            amount_charged=Decimal("20.00"),
            carrier="PostNL",
            tracking_number="TRK-0001",
            closed_at=factory.LazyFunction(timezone.now),
        )

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    ship_name = "Ada Lovelace"
    ship_line1 = "12 Analytical Row"
    ship_city = "London"
    ship_postal_code = "N1 7AA"
    ship_country = "GB"
    workflow = Workflow.CHOREOGRAPHY
    total = Decimal("20.00")
    currency = "EUR"
    card_last4 = "4242"
    deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(seconds=900))
    line = factory.RelatedFactory("tests.orders.factories.OrderLineFactory", "order")


class OrderLineFactory(DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory, line=None)
    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    quantity = 2
    unit_price = Decimal("10.00")


def _order(**fields: Any) -> factory.SubFactory:
    # A trait gives the whole order: a trait's ``order__status`` would mask
    # OrderFactory's own declarations whenever that trait is not in use.
    return factory.SubFactory(OrderFactory, orchestrated=True, **fields)


def _deadline() -> Any:
    return timezone.now() + timedelta(seconds=60)


def _undoing(step: str, code: str, reason: str, **fields: Any) -> factory.Trait:
    """A saga compensating at ``step`` for this failure."""
    return factory.Trait(
        state=State.COMPENSATING, step=step, failure_code=code, failure_reason=reason, **fields
    )


class OrderSagaFactory(DjangoModelFactory):
    """An orchestrated order's saga, waiting for the reply to its first command.

    Each trait is a point the saga can be at, with what it asked for so far
    and the order as the other apps' news left it.
    """

    class Meta:
        model = OrderSaga

    class Params:
        charging = factory.Trait(step=Step.CHARGE_PAYMENT)
        reserving = factory.Trait(
            step=Step.RESERVE_INVENTORY, reserve_requested=True, order=_order(status=Status.PAID)
        )
        shipping = factory.Trait(
            step=Step.CREATE_SHIPMENT,
            reserve_requested=True,
            ship_requested=True,
            order=_order(status=Status.RESERVED),
        )
        cancelling_shipment = _undoing(
            Step.CANCEL_SHIPMENT, "timeout", "No reply to Create Shipment in time",
            reserve_requested=True, ship_requested=True, order=_order(status=Status.RESERVED),
        )  # fmt: skip
        releasing = _undoing(
            Step.RELEASE_INVENTORY, "shipping_failed", "We do not ship to AQ.",
            reserve_requested=True, order=_order(status=Status.RESERVED),
        )  # fmt: skip
        refunding = _undoing(
            Step.REFUND_PAYMENT, "out_of_stock", "Not enough SKU-0001 in stock.",
            order=_order(status=Status.PAID),
        )  # fmt: skip
        parked = factory.Trait(state=State.NEEDS_ATTENTION, deadline=None)
        cancelled = factory.Trait(
            state=State.CANCELLED,
            step=Step.DONE,
            deadline=None,
            failure_code="out_of_stock",
            failure_reason="Not enough SKU-0001 in stock.",
            order=_order(
                cancelled=True,
                cancel_reason_code="out_of_stock",
                cancel_reason="Not enough SKU-0001 in stock; the payment was refunded",
            ),
        )
        completed = factory.Trait(
            state=State.COMPLETED,
            step=Step.DONE,
            deadline=None,
            reserve_requested=True,
            ship_requested=True,
            order=_order(completed=True),
        )

    order = _order()
    state = State.RUNNING
    step = Step.CHARGE_PAYMENT
    attempts = 1
    deadline = factory.LazyFunction(_deadline)
    card_token = factory.Sequence(lambda n: f"tok_test{n:020d}")


def reply(message_class: type[Message], *, order: Order, **fields: Any) -> Message:
    """A message another app sends about ``order``, with plausible values for what is not given."""
    plausible = {
        "order_id": order.id,
        "payment_id": uuid.uuid4(),
        "amount": order.total,
        "currency": order.currency,
        "lines": [{"sku": x.sku, "quantity": x.quantity} for x in order.lines.order_by("sku")],
        "reason_code": "card_declined",
        "reason": "It could not be done.",
        "shipment_id": uuid.uuid4(),
        "carrier": "PostNL",
        "tracking_number": "TRK-0001",
        "workflow": order.workflow,
    }
    known = {name: value for name, value in plausible.items() if name in message_class.model_fields}
    return message_class(**{**known, **fields})

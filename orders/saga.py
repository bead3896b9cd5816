"""The order saga: orchestration of payment, stock and shipping by commands.

The saga sends one command at a time to the app that handles it and waits
for its reply: ``ChargePayment`` → ``ReserveInventory`` → ``CreateShipment``.
When a step fails it compensates in reverse (``ReleaseInventory``, then
``RefundPayment``) and ends by cancelling the order with the reason. Each
step has a deadline: a step without a reply is sent again, then compensated;
a compensation that still gets no reply parks the saga as "needs attention".

The saga decides, the order's services apply: it keeps its own state
(``OrderSaga``) and sends the commands, and when a reply ends the order it
says how (``Cancel`` or ``Complete``), which ``orders.services`` carries out.

Every function here locks the saga's row, so two replies handled at once, or
the same reply twice, are applied one after the other to the state they find.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.commands import ReleaseInventory, ReserveInventory
from inventory.events import (
    InventoryReleased,
    InventoryReleaseFailed,
    InventoryReservationFailed,
    InventoryReserved,
    ReservedLine,
)
from messaging.messages import Command, Envelope, Message
from messaging.publishing import send
from payments.commands import ChargePayment, RefundPayment
from payments.events import PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided
from shipping.commands import CancelShipment, CreateShipment, ShipmentLine
from shipping.events import (
    ShipmentCancelFailed,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
)

from .models import Order, OrderSaga, SagaEntry
from .steps import reason_refunded

logger = logging.getLogger(__name__)

Step = OrderSaga.Step
State = OrderSaga.State
Kind = SagaEntry.Kind


@dataclass(frozen=True)
class Cancel:
    """The saga ended: cancel the order for this reason."""

    reason_code: str
    reason: str


@dataclass(frozen=True)
class Complete:
    """The saga ended: the parcel left, the order is complete."""

    carrier: str
    tracking_number: str


Ending = Cancel | Complete


def _command(saga: OrderSaga) -> Command:
    order = saga.order
    lines = list(order.lines.order_by("sku"))
    if saga.step == Step.CHARGE_PAYMENT:
        return ChargePayment(
            order_id=order.id,
            amount=order.total,
            currency=order.currency,
            card_token=saga.card_token,
            card_last4=order.card_last4,
        )
    if saga.step == Step.RESERVE_INVENTORY:
        return ReserveInventory(
            order_id=order.id,
            lines=[ReservedLine(sku=line.sku, quantity=line.quantity) for line in lines],
        )
    if saga.step == Step.CREATE_SHIPMENT:
        return CreateShipment(
            order_id=order.id,
            address={
                "name": order.ship_name,
                "line1": order.ship_line1,
                "city": order.ship_city,
                "postal_code": order.ship_postal_code,
                "country": order.ship_country,
            },
            lines=[ShipmentLine(sku=x.sku, name=x.name, quantity=x.quantity) for x in lines],
        )
    if saga.step == Step.CANCEL_SHIPMENT:
        return CancelShipment(order_id=order.id, reason=saga.failure_reason)
    if saga.step == Step.RELEASE_INVENTORY:
        return ReleaseInventory(order_id=order.id, reason=saga.failure_reason)
    if saga.step == Step.REFUND_PAYMENT:
        return RefundPayment(
            order_id=order.id, reason_code=saga.failure_code, reason=saga.failure_reason
        )
    raise ValueError(f"no command for step {saga.step}")


def _note(saga: OrderSaga, kind: str, *, envelope: Envelope | None = None, note: str = "") -> None:
    SagaEntry.objects.create(
        saga=saga,
        kind=kind,
        step=saga.step,
        message_type=envelope.type if envelope else "",
        message_id=envelope.message_id if envelope else None,
        note=note[:300],
    )


def _send_step(saga: OrderSaga, *, again: bool = False) -> None:
    """Send the current step's command and start waiting for its reply."""
    saga.attempts = saga.attempts + 1 if again else 1
    saga.deadline = timezone.now() + timedelta(seconds=settings.SAGA_STEP_TIMEOUT)
    envelope = send(_command(saga), correlation_id=str(saga.order_id))
    _note(saga, Kind.SENT, envelope=envelope, note=f"attempt {saga.attempts}")


def _go(saga: OrderSaga, step: str) -> None:
    saga.step = step
    if step == Step.RESERVE_INVENTORY:
        saga.reserve_requested = True
    if step == Step.CREATE_SHIPMENT:
        saga.ship_requested = True
    _send_step(saga)


def _next_compensation(saga: OrderSaga, after: str | None = None) -> str:
    """The next undo step, newest effect first: shipment, reservation, payment."""
    chain = [
        (Step.CANCEL_SHIPMENT, saga.ship_requested),
        (Step.RELEASE_INVENTORY, saga.reserve_requested),
        (Step.REFUND_PAYMENT, True),
    ]
    steps: list[str] = [step for step, needed in chain if needed]
    return steps[steps.index(after) + 1] if after in steps else steps[0]


def _finish(saga: OrderSaga, state: str) -> None:
    saga.state, saga.step, saga.deadline = state, Step.DONE, None


def _compensate(saga: OrderSaga, *, code: str, reason: str) -> None:
    """Undo what was done, newest first: the shipment, the reservation, then the payment."""
    saga.state = State.COMPENSATING
    saga.failure_code, saga.failure_reason = code, reason[:300]
    _note(saga, Kind.COMPENSATING, note=reason)
    _go(saga, _next_compensation(saga))


def _park(saga: OrderSaga, reason: str, envelope: Envelope | None = None) -> None:
    """Stop and wait for a person: the saga cannot undo this by itself."""
    saga.state, saga.deadline = State.NEEDS_ATTENTION, None
    _note(saga, Kind.ATTENTION, envelope=envelope, note=reason)


def saga_start(*, order: Order, card_token: str) -> OrderSaga:
    """Begin orchestrating a just-placed order (inside its placing transaction)."""
    saga = OrderSaga.objects.create(order=order, card_token=card_token)
    _send_step(saga)
    saga.save()
    return saga


# --- Replies --------------------------------------------------------------


def _charged(saga: OrderSaga, reply: PaymentProcessed) -> None:
    _go(saga, Step.RESERVE_INVENTORY)


def _charge_failed(saga: OrderSaga, reply: PaymentFailed) -> Ending:
    _finish(saga, State.CANCELLED)
    return Cancel(reason_code=reply.reason_code, reason=f"Payment failed: {reply.reason}")


def _reserved(saga: OrderSaga, reply: InventoryReserved) -> None:
    _go(saga, Step.CREATE_SHIPMENT)


def _reservation_failed(saga: OrderSaga, reply: InventoryReservationFailed) -> None:
    # Nothing was reserved: only the payment needs undoing.
    saga.reserve_requested = False
    _compensate(saga, code="out_of_stock", reason=reply.reason)


def _shipped(saga: OrderSaga, reply: ShipmentCreated) -> Ending:
    _finish(saga, State.COMPLETED)
    return Complete(carrier=reply.carrier, tracking_number=reply.tracking_number)


def _shipment_failed(saga: OrderSaga, reply: ShipmentFailed) -> None:
    # The carrier refused it: there is no shipment to cancel.
    saga.ship_requested = False
    _compensate(saga, code="shipping_failed", reason=reply.reason)


def _shipment_cancelled(saga: OrderSaga, reply: ShipmentCancelled) -> None:
    _go(saga, _next_compensation(saga, after=Step.CANCEL_SHIPMENT))


def _shipped_after_all(saga: OrderSaga, reply: ShipmentCancelFailed) -> Ending:
    # The parcel left before the cancel arrived, and nothing else has been
    # undone yet: going forward is the better end, so the order completes.
    _note(saga, Kind.COMPENSATING, note=f"{reply.reason}: completing the order instead")
    saga.failure_code = saga.failure_reason = ""
    _finish(saga, State.COMPLETED)
    return Complete(carrier=reply.carrier, tracking_number=reply.tracking_number)


def _cannot_undo(saga: OrderSaga, reply: InventoryReleaseFailed) -> None:
    _park(saga, f"cannot {saga.get_step_display().lower()}: {reply.reason}")


def _released(saga: OrderSaga, reply: InventoryReleased) -> None:
    _go(saga, _next_compensation(saga, after=Step.RELEASE_INVENTORY))


def _refunded(saga: OrderSaga, reply: PaymentRefunded | PaymentVoided) -> Ending:
    _finish(saga, State.CANCELLED)
    reason = saga.failure_reason
    if isinstance(reply, PaymentRefunded):
        reason = reason_refunded(reason)
    return Cancel(reason_code=saga.failure_code, reason=reason)


# Step -> reply type -> what it does; a reaction that ends the order returns how.
EXPECTED: dict[str, dict[type[Message], Callable[..., Ending | None]]] = {
    Step.CHARGE_PAYMENT: {PaymentProcessed: _charged, PaymentFailed: _charge_failed},
    Step.RESERVE_INVENTORY: {
        InventoryReserved: _reserved,
        InventoryReservationFailed: _reservation_failed,
    },
    Step.CREATE_SHIPMENT: {ShipmentCreated: _shipped, ShipmentFailed: _shipment_failed},
    Step.CANCEL_SHIPMENT: {
        ShipmentCancelled: _shipment_cancelled,
        ShipmentCancelFailed: _shipped_after_all,
    },
    Step.RELEASE_INVENTORY: {InventoryReleased: _released, InventoryReleaseFailed: _cannot_undo},
    Step.REFUND_PAYMENT: {PaymentRefunded: _refunded, PaymentVoided: _refunded},
}


def _late(saga: OrderSaga, reply: Message, envelope: Envelope) -> None:
    """A reply the saga no longer waits for: a duplicate, or one that came after it moved on.

    Effects the order must not keep are undone: money captured or stock
    reserved after the saga finished cancelling resumes its compensation, so
    the undoing is tracked (deadline, attention) like any other step.
    """
    cancelled = saga.state == State.CANCELLED
    if cancelled and isinstance(reply, PaymentProcessed):
        _note(saga, Kind.LATE, envelope=envelope, note="charged after cancelling: refunding")
        saga.state = State.COMPENSATING
        _go(saga, Step.REFUND_PAYMENT)
    elif cancelled and isinstance(reply, InventoryReserved):
        _note(saga, Kind.LATE, envelope=envelope, note="reserved after cancelling: releasing")
        saga.state, saga.reserve_requested = State.COMPENSATING, True
        _go(saga, Step.RELEASE_INVENTORY)
    elif isinstance(reply, ShipmentCreated) and saga.step == Step.CANCEL_SHIPMENT:
        _note(saga, Kind.LATE, envelope=envelope, note="the cancel's reply will decide")
    elif saga.state not in {State.RUNNING, State.COMPLETED} and isinstance(reply, ShipmentCreated):
        _park(saga, f"shipment {reply.tracking_number} was created for a cancelled order", envelope)
    else:
        _note(saga, Kind.LATE, envelope=envelope, note="already handled or undone next: ignored")


@transaction.atomic(savepoint=False)
def saga_handle_reply(*, order_id: UUID, reply: Message, envelope: Envelope) -> Ending | None:
    """Move the order's saga on by one reply; returns how the order ends, if it now does.

    The caller applies the ending: ``orders.services.order_saga_advance`` does.
    """
    saga = OrderSaga.objects.select_for_update().select_related("order").filter(pk=order_id).first()
    if saga is None:
        logger.warning("No saga for order %s; %s ignored", order_id, envelope.type)
        return None
    react = EXPECTED.get(saga.step, {}).get(type(reply))
    if react is not None and saga.state == State.NEEDS_ATTENTION:
        # The reply a parked compensation waited for came after all.
        saga.state = State.COMPENSATING
    ending = None
    if react is None or not saga.is_active:
        _late(saga, reply, envelope)
    else:
        _note(saga, Kind.RECEIVED, envelope=envelope)
        ending = react(saga, reply)
    saga.save()
    return ending


# --- Deadlines and staff ----------------------------------------------------


def saga_check_deadlines(*, now=None, limit: int = 200) -> int:
    """Act on every active saga whose step is overdue; returns how many."""
    now = now or timezone.now()
    overdue = list(
        OrderSaga.objects.filter(
            state__in=[State.RUNNING, State.COMPENSATING], deadline__lt=now
        ).values_list("pk", flat=True)[:limit]
    )
    for order_id in overdue:
        _on_deadline(order_id, now)
    return len(overdue)


@transaction.atomic(savepoint=False)
def _on_deadline(order_id: UUID, now) -> None:
    saga = OrderSaga.objects.select_for_update().select_related("order").get(pk=order_id)
    if not saga.is_active or saga.deadline is None or saga.deadline >= now:
        return  # a reply came meanwhile
    _note(saga, Kind.TIMED_OUT, note=f"no reply after attempt {saga.attempts}")
    if saga.attempts < settings.SAGA_STEP_ATTEMPTS:
        _send_step(saga, again=True)
    elif saga.state == State.RUNNING:
        _compensate(saga, code="timeout", reason=f"No reply to {saga.get_step_display()} in time")
    else:
        _park(saga, f"compensation {saga.step} got no reply")
    saga.save()


@transaction.atomic(savepoint=False)
def saga_wait_out(*, order_id: UUID, reason: str) -> bool:
    """The app of the payment step says it waits on something unavailable: the step is not
    timed out before the order's deadline, when the watchdog ends the order; returns whether
    the saga now waits.

    Its deadline moves one step's time past the order's, so that a command
    lost after all is still sent again if the order somehow outlives it.
    """
    saga = OrderSaga.objects.select_for_update().select_related("order").get(pk=order_id)
    paying = saga.step in {Step.CHARGE_PAYMENT, Step.REFUND_PAYMENT}
    if not saga.is_active or not paying or saga.order.deadline is None:
        return False
    waits_until = saga.order.deadline + timedelta(seconds=settings.SAGA_STEP_TIMEOUT)
    if saga.deadline is None or saga.deadline < waits_until:
        saga.deadline = waits_until
    _note(saga, Kind.WAITING, note=f"{reason}: waiting until the order's deadline")
    saga.save()
    return True


def saga_end(*, saga: OrderSaga, ending: Ending, note: str) -> None:
    """The order was ended from outside the saga (by its deadline): the saga stops here.

    Replies that come later are late ones: a charge or a reservation made
    after the cancel is undone (``_late``). The caller holds the saga's row locked.
    """
    if not saga.is_active:
        return
    _note(saga, Kind.TIMED_OUT, note=note)
    if isinstance(ending, Cancel):
        saga.failure_code, saga.failure_reason = ending.reason_code, ending.reason[:300]
        _finish(saga, State.CANCELLED)
    else:
        _finish(saga, State.COMPLETED)
    saga.save()


@transaction.atomic(savepoint=False)
def saga_retry_step(*, order_id: UUID, by: str) -> bool:
    """Staff: send the current step again (a parked compensation resumes)."""
    saga = OrderSaga.objects.select_for_update().select_related("order").get(pk=order_id)
    if saga.step == Step.DONE:
        return False
    if saga.state == State.NEEDS_ATTENTION:
        saga.state = State.COMPENSATING
    _note(saga, Kind.STAFF, note=f"{by} retried {saga.step}")
    _send_step(saga)
    saga.save()
    return True


@transaction.atomic(savepoint=False)
def saga_compensate(*, order_id: UUID, by: str) -> bool:
    """Staff: give up on a running order and undo what it did."""
    saga = OrderSaga.objects.select_for_update().select_related("order").get(pk=order_id)
    if saga.state != State.RUNNING:
        return False
    _note(saga, Kind.STAFF, note=f"{by} asked to compensate")
    _compensate(saga, code="staff", reason=f"Cancelled by staff ({by})")
    saga.save()
    return True

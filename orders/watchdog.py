"""The order watchdog: every order ends by its deadline, under either workflow.

An order still open at its deadline (``ORDER_DEADLINE_SECONDS`` after it was
placed) is ended here, the same way whatever its workflow: if the event log
has the parcel leaving, it completes (forward recovery); otherwise it is
cancelled with what it waited for ("not completed in time: waiting for
payments: charge the card"), and OrderCancelled makes each app undo its
part (payments refunds or voids, inventory releases the stock, shipping
cancels a shipment not yet made). Steps still on their way are refused
after the deadline, or undone, by the receiving app's state machine. An
orchestrated order's saga stops there; one whose saga is parked is parked
too (needs attention).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from . import selectors, services
from .events import Workflow
from .models import Order, OrderSaga
from .saga import Cancel, Complete, saga_end

logger = logging.getLogger(__name__)

# The deadline is a moment on two clocks: shipping refuses a parcel from
# then, and a parcel made just before it is reported a moment after. Acting
# this much later, the watchdog finds that report and completes the order
# instead of cancelling one whose parcel left.
GRACE = timedelta(seconds=2)
REASON_CODE = "deadline"


def order_watchdog_sweep(*, now: datetime | None = None, limit: int = 200) -> int:
    """End every open order past its deadline (up to ``limit`` a run); returns how many."""
    now = now or timezone.now()
    overdue = selectors.orders_overdue(now=now - GRACE, limit=limit)
    for order_id in overdue:
        order_end_overdue(order_id=order_id, now=now)
    return len(overdue)


@transaction.atomic(savepoint=False)
def order_end_overdue(*, order_id: UUID, now: datetime | None = None) -> Order:
    """Bring one order past its deadline to an end: complete, cancel or park it."""
    now = now or timezone.now()
    # The saga's row first, then the order's: the order the saga's replies take them in.
    saga = OrderSaga.objects.select_for_update().filter(pk=order_id).first()
    order = Order.objects.select_for_update().get(pk=order_id)
    if order.workflow != Workflow.ORCHESTRATION:
        saga = None
    if order.is_closed or order.needs_attention or not _is_due(order, now):
        return order
    if saga is not None and saga.state == OrderSaga.State.NEEDS_ATTENTION:
        order.attention_reason = f"its saga needs attention ({saga.get_step_display()})"
        order.save(update_fields=["attention_reason", "updated_at"])
        return order
    shipped = selectors.order_shipment_reported(order_id=order_id)
    ending: Cancel | Complete
    if shipped is not None:
        carrier, tracking = shipped.get("carrier", ""), shipped.get("tracking_number", "")
        ending = Complete(carrier=carrier, tracking_number=tracking)
        services.order_complete(order_id=order_id, carrier=carrier, tracking_number=tracking)
        note = "the order's deadline passed, but its parcel had left: completed"
    else:
        waiting = selectors.order_waiting_for(order=order)
        reason = f"not completed in time: waiting for {waiting}"
        ending = Cancel(reason_code=REASON_CODE, reason=reason)
        services.order_cancel(order_id=order_id, reason_code=REASON_CODE, reason=reason)
        note = f"the order's deadline passed: {reason}"
    if saga is not None:
        saga_end(saga=saga, ending=ending, note=note)
    logger.warning("Order %s ended by its deadline: %s", order_id, note)
    order.refresh_from_db()
    return order


def _is_due(order: Order, now: datetime) -> bool:
    return order.deadline is not None and order.deadline < now - GRACE

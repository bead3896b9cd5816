"""Payments' receivers of the backbone's signals (connected in PaymentsConfig.ready)."""

from __future__ import annotations

from messaging.messages import Envelope, registry
from orders.events import Workflow

from . import services


def announce_deferral(
    sender,
    *,
    handler: str,
    envelope: Envelope,
    deferred: bool = False,
    deferrals: int = 0,
    **kwargs,
) -> None:
    """A payments delivery was put off for the first time: tell the order it waits on the gateway.

    Only the first deferral of a message says so; the ones after it change nothing for the order.
    """
    if not (deferred and deferrals == 1 and handler.startswith("payments.")):
        return
    message = registry.read(envelope)
    order_id = getattr(message, "order_id", None)
    if order_id is None:
        return
    # Commands come from the saga; events name their workflow, or the screening row knows it.
    workflow = (
        Workflow.ORCHESTRATION if message.kind == "command" else getattr(message, "workflow", None)
    )
    services.payment_deferral_announce(order_id=order_id, workflow=workflow)

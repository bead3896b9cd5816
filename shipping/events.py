"""What shipping publishes."""

from uuid import UUID

from messaging.messages import Event
from orders.events import Workflow


class ShipmentCreated(Event):
    order_id: UUID
    shipment_id: UUID
    carrier: str
    tracking_number: str
    workflow: Workflow = Workflow.CHOREOGRAPHY


class ShipmentFailed(Event):
    order_id: UUID
    reason: str
    workflow: Workflow = Workflow.CHOREOGRAPHY


class ShipmentCancelled(Event):
    """No shipment will be made for the order: one asked for later is refused."""

    order_id: UUID
    workflow: Workflow = Workflow.CHOREOGRAPHY


class ShipmentCancelFailed(Event):
    """The shipment already left: it cannot be cancelled."""

    order_id: UUID
    reason: str
    carrier: str = ""
    tracking_number: str = ""
    workflow: Workflow = Workflow.CHOREOGRAPHY

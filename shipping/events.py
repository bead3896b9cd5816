"""What shipping publishes."""

from uuid import UUID

from messaging.messages import Event


class ShipmentCreated(Event):
    order_id: UUID
    shipment_id: UUID
    carrier: str
    tracking_number: str
    # Added in place (optional): which workflow the order runs under.
    workflow: str = "choreography"


class ShipmentFailed(Event):
    order_id: UUID
    reason: str
    workflow: str = "choreography"


class ShipmentCancelled(Event):
    """No shipment will be made for the order: one asked for later is refused."""

    order_id: UUID
    workflow: str = "choreography"


class ShipmentCancelFailed(Event):
    """The shipment already left: it cannot be cancelled."""

    order_id: UUID
    reason: str
    carrier: str = ""
    tracking_number: str = ""
    workflow: str = "choreography"

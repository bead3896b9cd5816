"""Which messages shipping listens to (imported from ShippingConfig.ready)."""

from messaging.consumers import subscribe

from . import handlers

subscribe(handlers.remember_destination)
subscribe(handlers.ship_reserved_order)
subscribe(handlers.create_shipment)
subscribe(handlers.cancel_shipment)

"""Which messages inventory listens to (imported from InventoryConfig.ready)."""

from messaging.consumers import subscribe

from . import handlers

subscribe(handlers.remember_order_lines)
subscribe(handlers.reserve_stock)
subscribe(handlers.ship_stock)
subscribe(handlers.release_unshippable)
subscribe(handlers.release_stock)
subscribe(handlers.reserve_inventory)
subscribe(handlers.release_inventory)

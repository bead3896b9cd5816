"""Which messages orders listens to (imported from OrdersConfig.ready)."""

from messaging.consumers import subscribe

from . import handlers

subscribe(handlers.update_catalog)
subscribe(handlers.mark_paid)
subscribe(handlers.cancel_unpaid)
subscribe(handlers.mark_reserved)
subscribe(handlers.record_refund)
subscribe(handlers.complete_shipped)
subscribe(handlers.advance_saga)

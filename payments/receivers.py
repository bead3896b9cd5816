"""Which messages payments listens to (imported from PaymentsConfig.ready)."""

from messaging.consumers import subscribe

from . import handlers

subscribe(handlers.charge_for_order)
subscribe(handlers.refund_when_out_of_stock)
subscribe(handlers.refund_when_unshippable)
subscribe(handlers.refund_when_cancelled)
subscribe(handlers.charge_payment)
subscribe(handlers.refund_payment)

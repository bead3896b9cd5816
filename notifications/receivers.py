"""Which messages notifications listens to (imported from NotificationsConfig.ready)."""

from messaging.consumers import subscribe

from . import handlers

subscribe(handlers.confirm_order)
subscribe(handlers.announce_completion)
subscribe(handlers.announce_cancellation)
subscribe(handlers.announce_refund)

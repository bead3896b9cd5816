"""The outbox: what the after-commit dispatch has not sent yet, and when the relay last ran.

Both pending reads use the outbox_pending partial index. The relay's last
run is its own record (messaging's RelayRun), which every run writes,
whichever worker or command ran it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from messaging.models import OutboxMessage
from messaging.selectors import relay_last_run

from .formats import age, moment


def outbox(*, now: datetime) -> dict:
    pending = OutboxMessage.objects.filter(dispatched_at__isnull=True)
    oldest = pending.order_by("id").values_list("occurred_at", flat=True).first()
    relay = relay_last_run()
    relay_age = age(relay.ran_at, now) if relay else None
    return {
        "backlog": pending.count(),
        "oldest_pending_at": moment(oldest),
        "oldest_pending_age_seconds": age(oldest, now),
        "relay": {
            "has_run": relay is not None,
            "interval_seconds": settings.MESSAGING_RELAY_INTERVAL,
            "last_run_at": moment(relay.ran_at) if relay else None,
            "last_run_age_seconds": relay_age,
            "last_runner": relay.runner if relay else None,
            # Late as readiness counts it (READY_RELAY_MAX_AGE).
            "is_late": relay_age is None or relay_age > settings.READY_RELAY_MAX_AGE,
        },
    }

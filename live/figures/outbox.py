"""The outbox: what the after-commit dispatch has not sent yet, and when the relay last ran.

Both pending reads use the outbox_pending partial index. The relay's last
run is celery beat's record of it (django_celery_beat's PeriodicTask), which
beat saves every few minutes, not at every run: it says the relay is
scheduled and roughly when it last went, not to the second.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django_celery_beat.models import PeriodicTask

from messaging.models import OutboxMessage

from .formats import age, moment

RELAY_TASK = "messaging.relay_outbox"


def outbox(*, now: datetime) -> dict:
    pending = OutboxMessage.objects.filter(dispatched_at__isnull=True)
    oldest = pending.order_by("id").values_list("occurred_at", flat=True).first()
    relay = (
        PeriodicTask.objects.filter(name=RELAY_TASK)
        .values("last_run_at", "enabled", "total_run_count")
        .first()
    )
    return {
        "backlog": pending.count(),
        "oldest_pending_at": moment(oldest),
        "oldest_pending_age_seconds": age(oldest, now),
        "relay": {
            "task": RELAY_TASK,
            "is_scheduled": relay is not None and relay["enabled"],
            "interval_seconds": settings.MESSAGING_RELAY_INTERVAL,
            "last_run_at": moment(relay["last_run_at"]) if relay else None,
            "last_run_age_seconds": age(relay["last_run_at"], now) if relay else None,
            "total_run_count": relay["total_run_count"] if relay else None,
        },
    }

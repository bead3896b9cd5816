"""The staff dashboard's snapshot: every figure it shows, as one JSON-ready dict.

Read by the dashboard's page and its figures.json, and every
LIVE_FIGURES_INTERVAL seconds by ``live_push`` while staff watch, so it
stays a few cheap queries and one broker round trip per queue. Its parts,
and where each figure comes from, are in ``live.figures``.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from .figures.broker import QueueProbe, default_probe
from .figures.business import business, processors
from .figures.flow import sagas, stuck
from .figures.formats import moment
from .figures.fraud import suspected_fraud
from .figures.gateway import gateway_breaker
from .figures.outbox import outbox
from .figures.queues import queues


def snapshot(*, probe: QueueProbe | None = None) -> dict:
    """Every figure of the dashboard now; ``probe`` asks the broker (the shared one if None)."""
    now = timezone.now()
    return {
        "generated_at": moment(now),
        "business": business(now=now),
        "processors": processors(now=now),
        "queues": queues(now=now, probe=probe or default_probe),
        "outbox": outbox(now=now),
        "sagas": sagas(),
        "breaker": gateway_breaker(),
        "stuck_orders": stuck(now=now),
        "fraud": suspected_fraud(),
        "links": {
            "admin": reverse("admin:index"),
            "dead_letters": reverse("admin:messaging_deadletter_changelist"),
            "outbox": reverse("admin:messaging_outboxmessage_changelist"),
            "processors": reverse("admin:analytics_processorstate_changelist"),
        },
    }

"""Orders the fraud screen suspects and staff have not cleared: how many, and the latest."""

from __future__ import annotations

from django.urls import reverse

from analytics.models import KeyKind
from analytics.selectors import fraud_flags_not_cleared

from .formats import moment

FRAUD_LISTED = 10


def _who(key_kind: str, key: str) -> str:
    # A card is known by its fingerprint: its start tells cards apart, as in the admin.
    return f"card {key[:12]}…" if key_kind == KeyKind.CARD else key


def suspected_fraud() -> dict:
    flags = fraud_flags_not_cleared()
    return {
        "count": flags.count(),
        "admin_url": reverse("admin:analytics_fraudflag_changelist"),
        "latest": [
            {
                "id": flag.pk,
                "order_id": str(flag.order_id),
                "rule": flag.rule,
                "who": _who(flag.key_kind, flag.key),
                "reason": flag.reason,
                "fired_at": moment(flag.fired_at),
                "admin_url": reverse("admin:analytics_fraudflag_change", args=[flag.pk]),
                "order_admin_url": reverse("admin:orders_order_change", args=[flag.order_id]),
            }
            for flag in flags[:FRAUD_LISTED]
        ],
    }

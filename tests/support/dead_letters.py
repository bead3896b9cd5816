"""Dead letters of the probe's ping handler, recorded as a worker would record them."""

from __future__ import annotations

import uuid

from django.utils import timezone

from messaging.dead_letters import dead_letter_record
from messaging.models import DeadLetter


def probe_letter(
    n: int = 1, *, reason: str = "retries_exhausted", traceback_text: str = "", **payload
) -> DeadLetter:
    """Letter ``n`` of probe.record_ping: a ProbePinged that failed with "probe n failed"."""
    return dead_letter_record(
        reason=reason,
        error=f"RuntimeError: probe {n} failed",
        traceback_text=traceback_text,
        handler_name="probe.record_ping",
        queue="probe_a",
        envelope={
            "message_id": str(uuid.uuid4()),
            "kind": "event",
            "type": "ProbePinged",
            "version": 1,
            "occurred_at": timezone.now().isoformat(),
            "correlation_id": f"probe-{n}",
            "payload": payload or {"probe_id": f"probe-{n}"},
        },
    )

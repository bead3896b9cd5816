"""Helpers to publish probe messages and read what the workers did with them."""

import uuid

from django.db import transaction

from messaging.messages import Envelope
from messaging.publishing import publish
from tests.probe.events import ProbePinged
from tests.probe.models import ProbeEffect


def new_probe_id() -> str:
    return f"probe-{uuid.uuid4().hex[:12]}"


def ping(probe_id: str) -> Envelope:
    """Publish ProbePinged in a transaction of its own and commit it."""
    with transaction.atomic():
        return publish(ProbePinged(probe_id=probe_id))


def effects(probe_id: str, handler: str | None = None):
    found = ProbeEffect.objects.filter(probe_id=probe_id)
    return found.filter(handler=handler) if handler else found


def deliveries(worker, task_name: str, outcome: str) -> int:
    """How many deliveries of this handler the worker has logged with this outcome so far."""
    return sum(
        f"{task_name}[" in line and "succeeded" in line and f"'{outcome}'" in line
        for line in worker.lines
    )

"""Helpers to publish probe messages and read what the workers did with them."""

import uuid

from django.db import transaction
from django_celery_results.models import TaskResult

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


def task_results(probe_id: str, task_name: str):
    """The stored results of a handler's tasks for messages about this probe."""
    return TaskResult.objects.filter(task_name=task_name, task_kwargs__contains=probe_id)

"""Celery adapters for the backbone's housekeeping."""

from celery import shared_task

from .relay import outbox_relay


@shared_task(name="messaging.relay_outbox", ignore_result=True)
def relay_outbox() -> str:
    """Send what the after-commit dispatch did not (run by celery beat)."""
    return str(outbox_relay())

"""Celery adapters for the backbone's housekeeping."""

import logging

from celery import shared_task
from django.db import close_old_connections

from .dead_letter_groups import dead_letter_group_run
from .relay import outbox_relay

logger = logging.getLogger(__name__)


@shared_task(name="messaging.relay_outbox", ignore_result=True)
def relay_outbox() -> str:
    """Send what the after-commit dispatch did not (a relay on demand, from the messaging queue)."""
    return str(outbox_relay())


@shared_task(name="messaging.dead_letter_group_act", ignore_result=True)
def dead_letter_group_act(run_id: int) -> str:
    """Redrive or discard a group of dead letters, batch by batch (on the messaging queue)."""
    return str(dead_letter_group_run(run_id=run_id))


def relay_outbox_in_worker(runner: str) -> str:
    """One run of the relay in a worker's pool process, on the worker's timer (RelayTimer).

    No task message carries it, so it does itself what a worker does around
    each task (config/connections.py): drop a connection that broke or aged.
    It never raises: a failed run is logged, and the next tick tries again.
    """
    close_old_connections()
    try:
        return str(outbox_relay(runner=runner))
    except Exception:
        logger.exception("The outbox relay failed; the next run tries again")
        return "failed"
    finally:
        close_old_connections()

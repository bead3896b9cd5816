"""The benchmark's queues in its vhost: declared, emptied, and watched until they are."""

from __future__ import annotations

import os
import time


def all_queues() -> list:
    from django.conf import settings
    from kombu import Exchange, Queue

    from . import kombu_floor
    from .doneq import done_queue

    return [
        *settings.CELERY_TASK_QUEUES,
        *[kombu_floor.queue(app) for app in settings.APP_QUEUES],
        done_queue(),
        Queue("celery", Exchange("celery", "direct"), routing_key="celery"),
    ]


def broker_connection():
    from kombu import Connection

    return Connection(os.environ["CELERY_BROKER_URL"])


def purge_queues(names: list[str] | None = None) -> None:
    """Declare the benchmark's queues in its vhost and empty them."""
    with broker_connection() as conn:
        channel = conn.channel()
        for queue in all_queues():
            if names is None or queue.name in names:
                bound = queue(channel)
                bound.declare()
                bound.purge()


def queue_depths(names: list[str]) -> dict[str, int]:
    """Ready messages per queue; while the broker cannot be reached, each counts as busy."""
    try:
        with broker_connection() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            return {
                name: channel.queue_declare(queue=name, passive=True).message_count
                for name in names
            }
    except (OSError, *broker_connection().connection_errors):
        time.sleep(1)
        return dict.fromkeys(names, 1)


def wait_queues_empty(names: list[str], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        quiet = quiet + 1 if not any(queue_depths(names).values()) else 0
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True

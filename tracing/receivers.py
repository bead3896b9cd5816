"""Thin wiring: the backbone's signals as span events, and each worker process's provider.

``connect_backbone`` is called from ``TracingConfig.ready()``;
``connect_worker`` from ``config.celery``, so that every worker has it
whatever its Django does.
"""

from celery.concurrency import get_implementation
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from opentelemetry import trace

from messaging.signals import delivery_retried

from .provider import tracing_setup, tracing_shutdown


def _retried(*, attempt, countdown, queue, deferred, **kwargs) -> None:
    # Sent inside the delivery, whose span is the current one.
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(
            "retry scheduled",
            {
                "eventshop.delivery.attempt": attempt,
                "eventshop.retry.countdown": countdown,
                "eventshop.retry.deferred": deferred,
                "messaging.destination.name": queue,
            },
        )


def connect_backbone() -> None:
    delivery_retried.connect(_retried, dispatch_uid="tracing.retried")


def _pool_process_started(**kwargs) -> None:
    tracing_setup(in_pool=True)


def _worker_ready_without_pool(sender=None, **kwargs) -> None:
    # A solo or threads pool runs its tasks in the main process, which sends
    # no worker_process_init: it traces itself. (Here the pool may still be
    # named by its alias, "prefork" by default.)
    pool = get_implementation(getattr(sender, "pool_cls", None) or "prefork")
    if not pool.__module__.endswith(".prefork"):
        tracing_setup(in_pool=True)


def _process_stopping(**kwargs) -> None:
    tracing_shutdown()


def connect_worker() -> None:
    worker_init.connect(_worker_ready_without_pool, dispatch_uid="tracing.worker_init")
    worker_process_init.connect(_pool_process_started, dispatch_uid="tracing.pool_process")
    worker_process_shutdown.connect(_process_stopping, dispatch_uid="tracing.pool_process_stop")
    worker_shutdown.connect(_process_stopping, dispatch_uid="tracing.worker_stop")

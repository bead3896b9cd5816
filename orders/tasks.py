"""Celery adapters for orders' periodic work."""

from celery import shared_task

from .idempotency import placement_keys_purge
from .saga import saga_check_deadlines
from .watchdog import order_watchdog_sweep


@shared_task(name="orders.saga_check_deadlines", ignore_result=True)
def check_saga_deadlines() -> int:
    """Retry or compensate saga steps whose reply is overdue (run by celery beat)."""
    return saga_check_deadlines()


@shared_task(name="orders.watchdog_sweep", ignore_result=True)
def sweep_overdue_orders() -> int:
    """End every order past its deadline, under either workflow (run by celery beat)."""
    return order_watchdog_sweep()


@shared_task(name="orders.placement_keys_purge", ignore_result=True)
def purge_placement_keys() -> int:
    """Forget the Idempotency-Keys and form tokens past their retention (run by celery beat)."""
    return placement_keys_purge()

"""Celery adapters for orders' periodic work."""

from celery import shared_task

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

from django.apps import AppConfig
from django.conf import settings


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Prometheus metrics"

    def ready(self) -> None:
        # Off, nothing is connected: the backbone's signals find no receiver
        # and cost one check each (the benchmark compares the two).
        if not settings.METRICS_ENABLED:
            return
        from celery.signals import worker_init, worker_process_shutdown, worker_shutdown

        from messaging.signals import (
            delivery_finished,
            message_confirmed,
            message_dead_lettered,
            message_published,
            relay_ran,
        )

        from . import exporter, receivers

        message_published.connect(receivers.count_published, dispatch_uid="metrics.published")
        message_confirmed.connect(receivers.count_confirmed, dispatch_uid="metrics.confirmed")
        delivery_finished.connect(receivers.count_delivery, dispatch_uid="metrics.delivery")
        message_dead_lettered.connect(
            receivers.count_dead_letter, dispatch_uid="metrics.dead_letter"
        )
        relay_ran.connect(receivers.count_relay_run, dispatch_uid="metrics.relay_run")
        # Only a worker sends these; ready() runs in its main process before it does.
        worker_init.connect(exporter.exporter_start, dispatch_uid="metrics.exporter_start")
        worker_shutdown.connect(exporter.exporter_stop, dispatch_uid="metrics.exporter_stop")
        worker_process_shutdown.connect(
            exporter.pool_process_gone, dispatch_uid="metrics.pool_process_gone"
        )

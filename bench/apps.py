import logging
import os

from django.apps import AppConfig

logger = logging.getLogger("bench")


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Benchmark"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from . import probe  # noqa: F401  (subscribes the probe handler)

        if os.environ.get("BENCH_NAIVE"):
            from . import naive

            naive.install()
        # The harness runs workers at WARNING (no line per task); this line
        # tells it the worker consumes.
        worker_ready.connect(_announce_ready, weak=False)


def _announce_ready(sender=None, **kwargs) -> None:
    logger.warning("bench worker ready")

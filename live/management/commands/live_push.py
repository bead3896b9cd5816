"""``manage.py live_push``: publish every order step from the event log to Redis pub/sub."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from live.publisher import Publisher, redis_client
from messaging.eventlog import LogError, event_log

logger = logging.getLogger("live")


class Command(BaseCommand):
    help = (
        "Publish each order step in the event log to its order's Redis channel (and the "
        "staff dashboard's) until SIGTERM or Ctrl-C. Needs REDIS_URL."
    )

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            raise CommandError(
                "REDIS_URL is not set: there is nothing to push to (the pages poll instead). "
                "Set REDIS_URL=redis://127.0.0.1:6379/0 to push."
            )
        stop = threading.Event()

        def stop_on(signum, frame):
            logger.info("Stopping the live push (%s)", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, stop_on)
        signal.signal(signal.SIGINT, stop_on)
        publisher = Publisher(
            event_log(),
            redis_client(settings.REDIS_URL),
            figures=_dashboard_figures,
            figures_interval=settings.LIVE_FIGURES_INTERVAL,
        )
        try:
            publisher.run(stop)
        except LogError as exc:
            raise CommandError(f"The event log cannot be read: {exc}") from None
        logger.info("Live push stopped after %s steps", publisher.published)


def _dashboard_figures() -> dict:
    """The staff dashboard's figures, imported when first made (only while staff watch).

    ``live.dashboard`` comes with the staff dashboard; the push of order
    steps runs without it.
    """
    from live.dashboard import snapshot

    return snapshot()

"""``manage.py stream_processor [--only NAME]``: keep the projections up with the event log."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from analytics.projections import PROCESSORS, UnknownProjection, processor_named
from analytics.runner import Runner

logger = logging.getLogger("analytics")


class Command(BaseCommand):
    help = (
        "Run the stream processors (every one, or one with --only) until SIGTERM or Ctrl-C. "
        "Each resumes from its committed offset."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            metavar="NAME",
            action="append",
            help=f"run only this processor (may be repeated): {', '.join(PROCESSORS)}",
        )

    def handle(self, *args, only=None, **options):
        try:
            chosen = [processor_named(name) for name in only] if only else list(PROCESSORS.values())
        except UnknownProjection as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()

        def stop_on(signum, frame):
            logger.info("Stopping the stream processors (%s)", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, stop_on)
        signal.signal(signal.SIGINT, stop_on)
        threads = [
            threading.Thread(target=Runner(p, stop=stop).run, name=p.name, daemon=True)
            for p in chosen
        ]
        for thread in threads:
            thread.start()
        logger.info("Stream processors running: %s", ", ".join(p.name for p in chosen))
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=0.5)
        logger.info("Stream processors stopped")

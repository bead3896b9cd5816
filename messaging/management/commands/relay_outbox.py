import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.relay import outbox_relay


class Command(BaseCommand):
    help = "Send outbox messages whose after-commit dispatch did not complete."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep relaying until interrupted.")
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.MESSAGING_RELAY_INTERVAL,
            help="Seconds between runs with --loop (default: %(default)s).",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=settings.MESSAGING_RELAY_GRACE,
            help="Only send messages pending at least this many seconds (default: %(default)s).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.MESSAGING_RELAY_BATCH,
            help="Messages per run (default: %(default)s).",
        )

    def handle(self, *args, loop, interval, grace, batch_size, **options):
        if interval <= 0 or grace < 0 or batch_size < 1:
            raise CommandError(
                "--interval must be above 0, --grace 0 or more, --batch-size 1 or more "
                f"(got {interval}, {grace}, {batch_size})."
            )
        while True:
            # Without --loop, drain everything pending now, batch by batch.
            result = outbox_relay(batch_size=batch_size, grace_seconds=grace)
            self.stdout.write(f"Outbox relay: {result}")
            if loop:
                time.sleep(interval if result.dispatched < batch_size else 0)
            elif result.failed or result.dispatched < batch_size:
                break
        if result.failed:
            raise CommandError(
                f"{result.failed} messages were not sent: the broker refused them or could not "
                "be reached. They are kept in the outbox for the next run."
            )

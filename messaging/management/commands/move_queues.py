from django.core.management.base import BaseCommand, CommandError

from messaging.queue_move import MoveError, queues_move


class Command(BaseCommand):
    help = (
        "Move every message of the app queues, their retry queues and dead_letters from another "
        "vhost (the old, classic one) into this process's broker, publisher-confirmed, "
        "each acknowledged on the old side only once the new side has it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="source",
            required=True,
            help="The old broker URL, e.g. amqp://user:pass@host:5672/shop",
        )
        parser.add_argument(
            "--to",
            dest="target",
            default=None,
            help="The new broker URL (default: CELERY_BROKER_URL).",
        )

    def handle(self, *args, source, target, **options):
        if not source.startswith(("amqp://", "amqps://", "pyamqp://")):
            raise CommandError(f"--from {source!r} is not a RabbitMQ URL: amqp://...")
        try:
            result = queues_move(source_url=source, target_url=target)
        except MoveError as exc:
            raise CommandError(f"{exc}. What was not moved is still on the old vhost.") from exc
        self.stdout.write(f"Moved: {result}")

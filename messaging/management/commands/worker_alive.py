from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.liveness import heartbeats_read, liveness


class Command(BaseCommand):
    help = (
        "Liveness probe for a supervisor: exit 0 if a worker on this machine is alive (its "
        "heartbeat file is fresh and its process runs), 1 otherwise, saying why."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--node", help="The worker's node name (celery worker -n), e.g. payments@host."
        )
        parser.add_argument("--queue", help="Any worker consuming this queue, e.g. payments.")
        parser.add_argument(
            "--max-age",
            type=float,
            default=settings.WORKER_HEARTBEAT_MAX_AGE,
            help="Seconds after which a heartbeat is stale (default: %(default)s).",
        )

    def handle(self, *args, node, queue, max_age, **options):
        if max_age <= 0:
            raise CommandError(f"--max-age must be above 0 (got {max_age})")
        matching = [
            beat
            for beat in heartbeats_read()
            if (node is None or beat.node == node) and (queue is None or queue in beat.queues)
        ]
        wanted = " and ".join(
            part for part in (node and f"node {node}", queue and f"queue {queue}") if part
        )
        if not matching:
            raise CommandError(
                f"No worker heartbeat{' for ' + wanted if wanted else ''} in "
                f"{settings.WORKER_HEARTBEAT_DIR}: no such worker runs here, or it stopped."
            )
        judged = [liveness(beat, max_age=max_age) for beat in matching]
        for verdict in judged:
            state = "alive" if verdict.is_alive else "dead"
            self.stdout.write(f"{verdict.heartbeat.node}: {state}, {verdict.reason}")
        if not any(verdict.is_alive for verdict in judged):
            raise CommandError(f"No live worker{' for ' + wanted if wanted else ''}.")

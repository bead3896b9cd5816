from django.core.management.base import BaseCommand, CommandError

from messaging.dead_letters import dead_letters_redrive
from messaging.models import DeadLetter, DeadLetterGroup


class Command(BaseCommand):
    help = "Send dead letters back to their handler's queue (each at most once)."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Dead letter ids to redrive.")
        parser.add_argument(
            "--all", action="store_true", help="Redrive every dead letter not redriven yet."
        )
        parser.add_argument(
            "--handler", help="Only dead letters of this handler (e.g. payments.charge)."
        )
        parser.add_argument(
            "--reason", choices=DeadLetter.Reason.values, help="Only dead letters with this reason."
        )
        parser.add_argument(
            "--group",
            metavar="FINGERPRINT",
            help="Only the dead letters of this group (its fingerprint, as the admin shows it).",
        )

    def handle(self, *args, ids, all, handler, reason, group, **options):
        if ids and all:
            raise CommandError("Name dead letter ids or use --all, not both.")
        if not ids and not (all or handler or reason or group):
            raise CommandError(
                "Name dead letter ids, or select them with --all, --handler, --reason or --group."
            )
        if group and not DeadLetterGroup.objects.filter(fingerprint=group).exists():
            raise CommandError(
                f"There is no dead letter group {group!r}: the admin's dead letter groups "
                "list each one's fingerprint."
            )
        selected = DeadLetter.objects.filter(redriven_at__isnull=True, discarded_at__isnull=True)
        if ids:
            selected = DeadLetter.objects.filter(pk__in=ids)
        if handler:
            selected = selected.filter(handler=handler)
        if reason:
            selected = selected.filter(reason=reason)
        if group:
            selected = selected.filter(fingerprint=group)
        result = dead_letters_redrive(ids=list(selected.values_list("pk", flat=True)))
        if result.skipped and not result.redriven:
            raise CommandError(f"Nothing was redriven: {result}")
        self.stdout.write(f"Redrive: {result}")

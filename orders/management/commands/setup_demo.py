import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.celery import describe_backends


class Command(BaseCommand):
    help = "Create the demo admin account (and demo data) and say how to reach the site."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.SHOP_URL)

    def handle(self, *args, url, **options):
        username = os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin" if settings.DEBUG else "")
        user_model = get_user_model()
        if not settings.DEBUG and not user_model.objects.filter(username=username).exists():
            self.password_check(username, password)
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.com", "is_staff": True, "is_superuser": True},
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        call_command("seed_catalog", stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(f"  Site:   {url}/")
        self.stdout.write(f"  Admin:  {url}/admin/")
        if created and settings.DEBUG:
            self.stdout.write(f"  Login:  {username} / {password}")
        elif created:
            self.stdout.write(f"  Login:  {username} (the password in DEMO_ADMIN_PASSWORD)")
        else:
            self.stdout.write(f"  Login:  {username} (existing account, password unchanged)")
        self.stdout.write(f"  Using   {describe_backends()}")

    def password_check(self, username: str, password: str) -> None:
        """Outside DEBUG the site may be reachable: no account with a password anyone knows."""
        if not password:
            raise CommandError(
                "DEBUG is off: set DEMO_ADMIN_PASSWORD to the password of the admin account "
                f"{username!r} to create (the development default, admin / admin, is refused)."
            )
        try:
            validate_password(password, user=get_user_model()(username=username))
        except ValidationError as weak:
            raise CommandError(
                f"DEMO_ADMIN_PASSWORD is refused: {' '.join(weak.messages)}"
            ) from None

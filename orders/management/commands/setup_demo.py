import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config.celery import describe_backends


class Command(BaseCommand):
    help = "Create the demo admin account (and demo data) and say how to reach the site."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=os.environ.get("SITE_URL", "http://127.0.0.1:8000"))

    def handle(self, *args, url, **options):
        username = os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        user_model = get_user_model()
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
        if created:
            self.stdout.write(f"  Login:  {username} / {password}")
        else:
            self.stdout.write(f"  Login:  {username} (existing account, password unchanged)")
        self.stdout.write(f"  Using   {describe_backends()}")

"""The migration that groups dead letters fingerprints the letters kept before it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from messaging.fingerprints import fingerprint_of

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("messaging", "0007_outbox_trace_context")
AFTER = ("messaging", "0008_dead_letter_groups")


def migrate_to(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


def test_letters_kept_before_the_migration_get_their_fingerprint_and_group():
    # Given letters recorded by the version before groups, two of one cause
    old = migrate_to(BEFORE)
    try:
        OldLetter = old.get_model("messaging", "DeadLetter")
        now = timezone.now()
        for error in ("KeyError: 'sku-1'", "KeyError: 'sku-2'", "not JSON"):
            OldLetter.objects.create(
                handler="inventory.reserve_stock", reason="permanent_error", error=error,
                first_failed_at=now, last_failed_at=now,
            )  # fmt: skip

        # When the migration runs
        new = migrate_to(AFTER)
    finally:
        migrate_to(AFTER)

    # Then each has the fingerprint a new letter would get, and each cause its group
    Letter = new.get_model("messaging", "DeadLetter")
    Group = new.get_model("messaging", "DeadLetterGroup")
    for letter in Letter.objects.all():
        expected = fingerprint_of(
            handler=letter.handler, reason=letter.reason, error=letter.error, traceback_text=""
        )
        assert letter.fingerprint == expected.digest
    assert Group.objects.count() == 2
    assert Group.objects.get(exception_type="KeyError").message == "<value>"
    assert new.get_model("auth", "Permission").objects.filter(codename="edit_deadletter").exists()

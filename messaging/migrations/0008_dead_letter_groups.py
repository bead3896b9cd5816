"""Dead letters grouped by cause: each letter's fingerprint, its group, runs and audit records.

The letters kept before are fingerprinted here, in batches, and their groups
made; the permission to edit a letter's payload is made here too, so that it
can be granted before anyone runs the app.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from messaging.fingerprints import fingerprint_of

BATCH = 1000


def fingerprint_kept_letters(apps, schema_editor):
    DeadLetter = apps.get_model("messaging", "DeadLetter")
    DeadLetterGroup = apps.get_model("messaging", "DeadLetterGroup")
    letters = DeadLetter.objects.filter(fingerprint="").order_by("pk")
    last = 0
    while batch := list(letters.filter(pk__gt=last)[:BATCH]):
        groups = {}
        for letter in batch:
            found = fingerprint_of(
                handler=letter.handler,
                reason=letter.reason,
                error=letter.error,
                traceback_text=letter.traceback,
            )
            letter.fingerprint = found.digest
            groups.setdefault(
                found.digest,
                DeadLetterGroup(
                    fingerprint=found.digest,
                    handler=letter.handler,
                    reason=letter.reason,
                    exception_type=found.exception_type,
                    message=found.message,
                    frame=found.frame,
                    created_at=letter.first_failed_at,
                ),
            )
        DeadLetterGroup.objects.bulk_create(groups.values(), ignore_conflicts=True)
        DeadLetter.objects.bulk_update(batch, ["fingerprint"])
        last = batch[-1].pk


def edit_permission_create(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.get_or_create(app_label="messaging", model="deadletter")
    Permission.objects.get_or_create(
        content_type=content_type,
        codename="edit_deadletter",
        defaults={"name": "Can edit a dead letter's payload and dry-run it"},
    )


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0007_outbox_trace_context'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.CreateModel(
            name='DeadLetterGroup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(max_length=32, unique=True)),
                ('handler', models.CharField(blank=True, max_length=200)),
                ('reason', models.CharField(choices=[('undecodable', 'Body could not be decoded'), ('rejected_content', 'Content type not accepted'), ('unknown_task', 'No such handler'), ('unknown_format', 'Not a task message'), ('malformed', 'Malformed envelope'), ('unknown_message', 'Unknown message type or version'), ('invalid_payload', 'Payload fails its schema'), ('permanent_error', 'Handler failed permanently'), ('retries_exhausted', 'Handler failed after all retries'), ('retry_failed', 'Retry could not be scheduled'), ('oversized', 'Message larger than the limit')], max_length=20)),
                ('exception_type', models.CharField(blank=True, max_length=200)),
                ('message', models.TextField(blank=True)),
                ('frame', models.CharField(blank=True, max_length=300)),
                ('created_at', models.DateTimeField()),
            ],
            options={
                'verbose_name': 'dead letter group',
                'ordering': ['-created_at'],
            },
        ),
        migrations.AlterModelOptions(
            name='deadletter',
            options={'ordering': ['-last_failed_at'], 'permissions': [('edit_deadletter', "Can edit a dead letter's payload and dry-run it")]},
        ),
        migrations.AddField(
            model_name='deadletter',
            name='discarded_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='deadletter',
            name='fingerprint',
            field=models.CharField(blank=True, db_index=True, max_length=32),
        ),
        migrations.CreateModel(
            name='DeadLetterAudit',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(blank=True, max_length=32)),
                ('action', models.CharField(choices=[('edit', 'Edit'), ('redrive', 'Redrive'), ('discard', 'Discard')], max_length=10)),
                ('actor_name', models.CharField(max_length=150)),
                ('at', models.DateTimeField(db_index=True)),
                ('reason', models.TextField(blank=True)),
                ('before', models.JSONField()),
                ('after', models.JSONField()),
                ('actor', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('dead_letter', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audits', to='messaging.deadletter')),
            ],
            options={
                'verbose_name': 'dead letter audit record',
                'ordering': ['-at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='DeadLetterGroupRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('edit', 'Edit'), ('redrive', 'Redrive'), ('discard', 'Discard')], max_length=10)),
                ('reason', models.TextField()),
                ('requested_at', models.DateTimeField()),
                ('total', models.PositiveIntegerField()),
                ('done', models.PositiveIntegerField(default=0)),
                ('skipped', models.PositiveIntegerField(default=0)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('outcome', models.TextField(blank=True)),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='messaging.deadlettergroup')),
                ('requested_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'dead letter group run',
                'ordering': ['-requested_at'],
            },
        ),
        migrations.RunPython(fingerprint_kept_letters, migrations.RunPython.noop),
        migrations.RunPython(edit_permission_create, migrations.RunPython.noop),
    ]

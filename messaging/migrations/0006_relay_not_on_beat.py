"""Beat no longer schedules the relay: every worker runs it (messaging.worker.RelayTimer).

django-celery-beat's DatabaseScheduler adds the entries of CELERY_BEAT_SCHEDULE
to its table but never removes one the setting dropped: without this, beat
would go on sending the relay task to the messaging queue, where no worker
need be any more, and it would pile up there.
"""

from django.db import migrations

RELAY_TASK = "messaging.relay_outbox"


def unschedule_relay(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=RELAY_TASK, task=RELAY_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0005_relay_run"),
        ("django_celery_beat", "0001_initial"),
    ]

    operations = [migrations.RunPython(unschedule_relay, migrations.RunPython.noop)]

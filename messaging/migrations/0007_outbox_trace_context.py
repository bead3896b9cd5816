"""The outbox keeps each message's trace context (the envelope's traceparent and tracestate).

Nullable columns without a default: PostgreSQL adds them to its catalog without
rewriting the table, and every row written before reads as "no trace context".
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0006_relay_not_on_beat'),
    ]

    operations = [
        migrations.AddField(
            model_name='outboxmessage',
            name='traceparent',
            field=models.CharField(blank=True, max_length=100, null=True),
        ),
        migrations.AddField(
            model_name='outboxmessage',
            name='tracestate',
            field=models.TextField(blank=True, null=True),
        ),
    ]

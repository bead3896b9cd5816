from django.db import models


class ProbeEffect(models.Model):
    """One row each time a probe handler takes effect."""

    probe_id = models.CharField(max_length=100, db_index=True)
    handler = models.CharField(max_length=100)
    message_id = models.UUIDField()
    correlation_id = models.CharField(max_length=100)
    causation_id = models.UUIDField(null=True)
    # The worker (celery hostname) whose process ran the handler.
    worker = models.CharField(max_length=200, blank=True)
    # The routing key RabbitMQ delivered the message with: the queue it was sent to.
    routing_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.handler} {self.probe_id}"


class ProbeSwitch(models.Model):
    """Makes a probe handler fail while it is on: the bug, and its fix."""

    probe_id = models.CharField(max_length=100, unique=True)
    is_failing = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.probe_id} failing={self.is_failing}"

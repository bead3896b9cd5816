"""What RabbitMQ itself says about our queues and messages."""

import json
import shutil
import subprocess
import uuid

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Exchange, Queue

from config.celery import app
from messaging import transport
from messaging.messages import Envelope
from messaging.subscriptions import Handler
from tests.probe.events import ProbePinged
from tests.support.prerequisites import require

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_app_queue_exists_on_rabbitmq_as_durable(app_workers, workers):
    rabbitmqctl = shutil.which("rabbitmqctl")
    require(rabbitmqctl is not None, "rabbitmqctl")
    listed = subprocess.run(
        [rabbitmqctl, "list_queues", "name", "durable", "--formatter", "json", "--quiet"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    durable = {queue["name"]: queue["durable"] for queue in json.loads(listed.stdout)}
    for name in ["orders", "payments", "inventory", "shipping", "notifications", "messaging"]:
        assert durable.get(name) is True, f"queue {name!r} on the broker: {durable.get(name)}"


def test_handler_messages_are_persistent_json(rabbitmq, broker_proxy):
    # Given a handler on a queue that no worker consumes
    name = f"tap_{uuid.uuid4().hex[:8]}"
    tap = Handler(lambda message, envelope: None, (ProbePinged,), queue=name, name=f"probe.{name}")
    envelope = Envelope(
        message_id=uuid.uuid4(),
        kind="event",
        type="ProbePinged",
        version=1,
        occurred_at=timezone.now(),
        correlation_id="tap",
        payload=ProbePinged(probe_id=name).model_dump(mode="json"),
    )

    # When a message is enqueued for it
    transport.send([transport.Copy(tap, envelope.to_wire())])

    # Then the broker holds it on a durable queue, persistent and in JSON
    with app.connection_for_write() as conn:
        queue = Queue(name, Exchange(name), routing_key=name, durable=True)
        with conn.SimpleQueue(queue) as tapped:
            message = tapped.get(timeout=10)
            message.ack()
        queue(conn.default_channel).delete()
    assert message.properties["delivery_mode"] == 2
    assert message.content_type == "application/json"
    assert message.headers["task"] == f"probe.{name}"
    assert message.payload[1] == {"envelope": envelope.to_wire()}


@pytest.mark.parametrize("setting", ["CELERY_ACCEPT_CONTENT", "CELERY_RESULT_ACCEPT_CONTENT"])
def test_workers_accept_json_only(setting):
    assert getattr(settings, setting) == ["json"]

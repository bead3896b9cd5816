"""Moving a running deployment from classic queues to quorum ones: manage.py move_queues.

A vhost with classic queues holds what a deployment left there: messages no
worker took yet, messages a killed worker held in flight (back in the queue),
a retry waiting in a retry queue. After the move every one of them is handled
once, by workers on a new vhost whose queues of the same names are quorum.
"""

import io
import shutil
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from kombu import Connection

from gateway.models import Charge
from inventory import services as inventory
from messaging import transport
from messaging.subscriptions import handler_named
from orders.models import CatalogItem
from payments.models import Payment
from tests.flow.conftest import place_orders, wait_until_closed
from tests.probe.events import ProbePinged
from tests.probe.models import ProbeEffect
from tests.support.broker import broker_vhost, list_queues
from tests.support.envelopes import envelope_of
from tests.support.prerequisites import require
from tests.support.probes import new_probe_id
from tests.support.vhosts import publishing_to, vhost_of_its_own
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.workers import APP_QUEUES, worker_env, workers_running

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases="__all__")]

DELIVERY_LIMIT = 5


@pytest.fixture
def vhosts(rabbitmq, broker_proxy) -> Iterator[tuple[str, str]]:
    """The old vhost (classic queues) and the new one (quorum queues, same names)."""
    require(shutil.which("rabbitmqctl") is not None, "rabbitmqctl")
    with vhost_of_its_own("classic_old") as old, vhost_of_its_own("quorum_new") as new:
        yield old, new


def vhost_name(url: str) -> str:
    return broker_vhost(url)


def messages_on(url: str) -> dict[str, int]:
    return {q["name"]: q["messages"] for q in list_queues(vhost_name(url), "name", "messages")}


def queues_declare() -> None:
    from config.celery import app

    with Connection(app.conf.broker_url) as connection:
        for queue in app.amqp.queues.values():
            queue(connection.default_channel).declare()


def product(sku: str, on_hand: int) -> None:
    # The storefront's copy is written here: no orders worker runs on the old side to fold it.
    inventory.product_save(sku=sku, name=f"Move {sku}", price=Decimal("10.00"), on_hand=on_hand)
    CatalogItem.objects.update_or_create(
        sku=sku,
        defaults=dict(
            name=f"Move {sku}",
            price="10.00",
            currency="EUR",
            available=on_hand,
            as_of=timezone.now(),
        ),
    )


def test_moving_from_classic_to_quorum_queues_loses_nothing_and_handles_each_message_once(
    vhosts, django_db_setup, django_db_blocker, settings
):
    old, new = vhosts
    settings.MESSAGING_RETRY_BACKOFF_MAX = 8.0  # a retry tier long enough to be moved in
    sku = f"M-{uuid.uuid4().hex[:8].upper()}"
    probe_id = new_probe_id()
    charges_before = Charge.objects.count()

    # Given a deployment on classic queues (each declared, as its workers did when they started):
    # orders placed while only a slow payments worker runs
    with publishing_to(old, queue_type="classic", delivery_limit=DELIVERY_LIMIT):
        queues_declare()
        product(sku, on_hand=20)
        slow = {"PAYMENT_GATEWAY_LATENCY": "1.0"}
        with workers_running(
            {"payments": ("payments-classic", ["payments"], 1)},
            {**worker_env(old, django_db_blocker), **slow},
        ) as classic:
            ids = place_orders(
                sku, workflows=["choreography", "orchestration"] * 3, email="move@example.com"
            )
            wait_for(lambda: Payment.objects.filter(order_id__in=ids).exists(), what="a charge")
            time.sleep(1.5)
            # killed while it holds deliveries: they go back to the classic queue
            classic["payments"].kill()
        # and a retry waiting (8 s) in a classic retry queue
        retry = transport.Copy(
            handler_named("probe.record_ping"),
            envelope_of(ProbePinged(probe_id=probe_id)).to_wire(),
            retries=1,
            delay=8.0,
        )
        transport.send([retry])
    left = messages_on(old)
    assert left["probe_a.retry.8000ms"] == 1
    assert left["payments"] > 0
    assert sum(left.values()) > len(ids)

    # When the new deployment runs on the new vhost, with quorum queues, and the old one is moved
    new_env = {
        **worker_env(new, django_db_blocker),
        "MESSAGING_QUEUE_TYPE": "quorum",
        "MESSAGING_DELIVERY_LIMIT": str(DELIVERY_LIMIT),
    }
    specs = {queue: (f"{queue}-moved", [queue], 1) for queue in [*APP_QUEUES, "probe_a"]}
    with (
        publishing_to(new, queue_type="quorum", delivery_limit=DELIVERY_LIMIT),
        workers_running(specs, new_env),
    ):
        out = io.StringIO()
        call_command("move_queues", "--from", old, stdout=out)
        print(f"left on the classic vhost: {left}; {out.getvalue().strip()}")

        # Then every order ends, completed, charged once
        for order_id in ids:
            assert wait_until_closed(order_id, timeout=120).status == "completed"
        assert Payment.objects.filter(order_id__in=ids, status="captured").count() == len(ids)
        assert Charge.objects.count() - charges_before == len(ids)
        # the retry was delivered, once
        wait_for(
            lambda: ProbeEffect.objects.filter(probe_id=probe_id).exists(),
            timeout=90,
            what="the retry (8 s in its retry queue again)",
        )
        wait_until_quiet([*APP_QUEUES, "probe_a"], vhost=vhost_name(new))
        assert ProbeEffect.objects.filter(probe_id=probe_id).count() == 1

    # and our queues on the old vhost are empty (the event log's stream stays), each message
    # counted as moved into a quorum queue of the same name
    ours = {name: n for name, n in left.items() if name != "events"}
    assert not any(n for name, n in messages_on(old).items() if name in ours)
    moved = int(out.getvalue().split("Moved: ", 1)[1].split()[0])
    assert moved == sum(ours.values())
    types = {q["name"]: q["type"] for q in list_queues(vhost_name(new), "name", "type")}
    assert {types[name] for name, n in ours.items() if n} == {"quorum"}


def test_a_source_that_is_not_rabbitmq_is_refused_before_anything_moves():
    with pytest.raises(CommandError, match="--from 'redis://x' is not a RabbitMQ URL: amqp://"):
        call_command("move_queues", "--from", "redis://x")


def test_a_move_onto_the_vhost_it_comes_from_is_refused(rabbitmq):
    with pytest.raises(CommandError, match="the source and the target are one vhost"):
        call_command("move_queues", "--from", rabbitmq, "--to", rabbitmq)

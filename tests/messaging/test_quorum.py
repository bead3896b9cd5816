"""Quorum queues on the real RabbitMQ, with real workers: their arguments, retries that wait in
retry queues (held by no worker), the delivery limit, and the order flow.

They run on a vhost of their own (tests/support/vhosts.py), whose queues every
process here declares as quorum queues with a delivery limit of 2.
"""

import shutil
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from gateway.models import Charge
from inventory import services as inventory
from messaging.models import DeadLetter
from messaging.publishing import publish
from orders.models import CatalogItem
from payments.models import Payment
from tests.flow.conftest import place_orders, wait_until_closed
from tests.probe.events import ProbeFatal, ProbeTroubled
from tests.probe.models import ProbeEffect, ProbeSwitch
from tests.support.broker import broker_vhost, list_queues
from tests.support.prerequisites import require
from tests.support.probes import new_probe_id
from tests.support.vhosts import publishing_to, vhost_of_its_own
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.workers import APP_QUEUES, WorkerProcess, worker_env, workers_running

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases="__all__")]

DELIVERY_LIMIT = 2
VHOST_SUFFIX = "quorum"
# The probe worker's retries: one, on tiers (5, 10 and 20 s) long enough to watch it wait
# on a busy machine (where rabbitmqctl takes seconds, and a quorum queue's counts lag),
# and a patient confirm (a retry not confirmed in time is dead-lettered).
PROBE_RETRIES = {
    "MESSAGING_MAX_RETRIES": "1",
    "MESSAGING_RETRY_BACKOFF": "10",
    "MESSAGING_RETRY_BACKOFF_MAX": "20",
    "MESSAGING_CONFIRM_TIMEOUT": "30",
}


def quorum_env(url: str, django_db_blocker, **extra: str) -> dict[str, str]:
    return {
        **worker_env(url, django_db_blocker),
        "MESSAGING_QUEUE_TYPE": "quorum",
        "MESSAGING_DELIVERY_LIMIT": str(DELIVERY_LIMIT),
        **extra,
    }


@pytest.fixture(scope="module")
def quorum_vhost(rabbitmq, broker_proxy) -> Iterator[str]:
    require(shutil.which("rabbitmqctl") is not None, "rabbitmqctl")
    with vhost_of_its_own(VHOST_SUFFIX) as url:
        yield url


@pytest.fixture(scope="module")
def quorum_workers(quorum_vhost, django_db_setup, django_db_blocker):
    """Each app's worker, and one of probe_a with slow retries, all on quorum queues."""
    specs = {queue: (f"{queue}-quorum", [queue], 1) for queue in APP_QUEUES}
    specs["probe"] = ("probe-quorum", ["probe_a"], 1)
    env = quorum_env(quorum_vhost, django_db_blocker)
    with workers_running({k: v for k, v in specs.items() if k != "probe"}, env) as apps:
        probe_env = {**env, **PROBE_RETRIES}
        with workers_running({"probe": specs["probe"]}, probe_env) as probe:
            yield {**apps, **probe}


@pytest.fixture
def on_quorum(quorum_vhost, quorum_workers) -> Iterator[str]:
    """This process publishes to the quorum vhost; afterwards its workers go quiet."""
    with publishing_to(quorum_vhost, queue_type="quorum", delivery_limit=DELIVERY_LIMIT):
        yield quorum_vhost
        vhost = broker_vhost(quorum_vhost)
        wait_until_quiet([*APP_QUEUES, "probe_a", "probe_e", "dead_letters"], vhost=vhost)


def queues_of(url: str, *fields: str) -> dict[str, dict]:
    return {q["name"]: q for q in list_queues(broker_vhost(url), "name", *fields)}


def arguments(listed: dict) -> dict:
    return {name: value for name, _kind, value in listed["arguments"]}


def test_every_app_queue_is_a_quorum_queue_with_a_delivery_limit_and_safe_dead_letters(
    on_quorum,
):
    # Given the app workers, started with MESSAGING_QUEUE_TYPE=quorum (they declare their queues)
    listed = queues_of(on_quorum, "type", "arguments")

    # Then each app queue is a quorum queue that dead-letters, at least once, into dead_letters
    for name in APP_QUEUES:
        assert listed[name]["type"] == "quorum", name
        assert arguments(listed[name]) == {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "dead_letters",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    # and the queue it dead-letters into is replicated too
    assert listed["dead_letters"]["type"] == "quorum"


def test_a_failing_handler_waits_in_a_quorum_retry_queue_unheld_then_is_dead_lettered(
    on_quorum,
):
    # Given a handler that fails every time for this probe (one retry, after 5 or 10 s)
    probe_id = new_probe_id()
    ProbeSwitch.objects.create(probe_id=probe_id)
    started = time.monotonic()
    publish(ProbeTroubled(probe_id=probe_id))

    # While it is retried, the broker holds the retry: a retry queue has it ready,
    # and the worker holds nothing unacknowledged
    samples = []
    while not DeadLetter.objects.filter(envelope__payload__probe_id=probe_id).exists():
        assert time.monotonic() - started < 60, "no dead letter after 60 s"
        listed = queues_of(on_quorum, "type", "messages_ready", "messages_unacknowledged")
        samples.append(listed)
    waiting = [
        (name, sample)
        for sample in samples
        for name, queue in sample.items()
        if name.startswith("probe_a.retry.") and queue["messages_ready"] == 1
    ]
    letter = DeadLetter.objects.get(envelope__payload__probe_id=probe_id)
    assert waiting, f"never saw the retry waiting in a retry queue; dead letter: {letter.error}"
    for name, sample in waiting:
        assert sample[name]["type"] == "quorum"
        assert sample["probe_a"]["messages_unacknowledged"] == 0
        assert sample["probe_a"]["messages_ready"] == 0
    retry_queue = queues_of(on_quorum, "arguments")[waiting[0][0]]
    assert arguments(retry_queue)["x-dead-letter-routing-key"] == "probe_a"
    assert arguments(retry_queue)["x-message-ttl"] in {5000, 10000}

    # Then it was tried twice, the backoff's wait between (at least 5 s)
    assert letter.reason == DeadLetter.Reason.RETRIES_EXHAUSTED
    assert letter.attempts == 2
    assert ProbeEffect.objects.filter(probe_id=probe_id).count() == 0  # each attempt rolled back
    assert (letter.last_failed_at - letter.first_failed_at).total_seconds() >= 5


def test_a_message_that_kills_its_worker_every_time_is_dead_lettered_at_the_delivery_limit(
    on_quorum, django_db_blocker
):
    # Given a message whose handler kills the worker process (solo pool) that runs it
    probe_id = new_probe_id()
    publish(ProbeFatal(probe_id=probe_id))
    env = quorum_env(on_quorum, django_db_blocker)

    # When a supervisor starts the worker again each time it dies
    deaths = 0
    deadline = time.monotonic() + 120
    while not DeadLetter.objects.filter(envelope__payload__probe_id=probe_id).exists():
        assert time.monotonic() < deadline, f"no dead letter after {deaths} deaths"
        worker = WorkerProcess(f"fatal-{deaths}", ["probe_e"], env, 1, pool="solo")
        try:
            while (
                worker.is_running
                and not DeadLetter.objects.filter(envelope__payload__probe_id=probe_id).exists()
            ):
                time.sleep(0.2)
        finally:
            deaths += 0 if worker.is_running else 1
            worker.stop()

    # Then RabbitMQ gave up on it at the delivery limit, and a worker kept it as a dead letter
    letter = DeadLetter.objects.get(envelope__payload__probe_id=probe_id)
    assert letter.reason == DeadLetter.Reason.DELIVERY_LIMIT
    assert letter.queue == "probe_e"
    assert letter.handler == "probe.exit_worker"
    assert f"after {DELIVERY_LIMIT} deliveries on probe_e" in letter.error
    assert letter.is_redrivable
    assert deaths >= DELIVERY_LIMIT
    # and nothing is left of it on the broker
    wait_for(
        lambda: all(queues_of(on_quorum, "messages")[q]["messages"] == 0 for q in EMPTIED),
        timeout=15,
        what=f"{' and '.join(EMPTIED)} to be empty",
    )


EMPTIED = ("probe_e", "dead_letters")


def product_in_catalog(on_hand: int) -> str:
    sku = f"Q-{uuid.uuid4().hex[:8].upper()}"
    inventory.product_save(sku=sku, name=f"Quorum {sku}", price=Decimal("10.00"), on_hand=on_hand)
    wait_for(
        lambda: CatalogItem.objects.filter(sku=sku, available=on_hand).exists(),
        what=f"{sku} in the storefront's catalog",
    )
    return sku


def test_orders_complete_on_quorum_queues_under_both_workflows(on_quorum):
    # Given a product, with every app's worker on quorum queues
    sku = product_in_catalog(on_hand=10)
    charges_before = Charge.objects.count()

    # When orders are placed under either workflow
    ids = place_orders(
        sku, workflows=["choreography", "orchestration"] * 2, email="quorum@example.com"
    )

    # Then each completes, charged once
    for order_id in ids:
        assert wait_until_closed(order_id).status == "completed"
    assert Payment.objects.filter(order_id__in=ids, status="captured").count() == len(ids)
    assert Charge.objects.count() - charges_before == len(ids)

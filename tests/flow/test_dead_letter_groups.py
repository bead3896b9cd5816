"""Dead letters grouped by cause, against real workers: a group redriven once its fault is
fixed, each letter sent once however many staff redrive it, and dry runs that keep nothing."""

import json
import threading
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection, connections
from django.urls import reverse

from messaging.dead_letter_groups import dead_letter_group_run, dead_letter_group_run_start
from messaging.models import (
    DeadLetter,
    DeadLetterAudit,
    DeadLetterGroup,
    DeadLetterGroupRun,
    OutboxMessage,
)
from orders.models import Order
from tests.flow.conftest import order_body, wait_until_closed
from tests.support import faults
from tests.support.broker import purge_queues, queue_depths
from tests.support.dead_letters import probe_letter
from tests.support.waiting import wait_for
from tests.support.workers import consumer_paused, worker_env, workers_running

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

SHIP = "shipping.ship_reserved_order"


def staff_who_may(client, *codenames: str) -> User:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def orders_stuck_on_a_broken_handler(client, stock, count: int) -> list[str]:
    """Orders placed while shipping's handler is broken: each dead-lettered, none ending."""
    sku = stock(on_hand=count)
    with faults.injected(faults.failing_handler(SHIP)):
        ids = [
            client.post(
                "/api/orders/", order_body(items=[(sku, 1)]), content_type="application/json"
            ).json()["id"]
            for _ in range(count)
        ]
        wait_for(
            lambda: DeadLetter.objects.filter(handler=SHIP).count() == count,
            timeout=90,
            what=f"{count} dead letters of {SHIP}",
        )
    return ids


def test_a_group_redriven_after_the_fault_is_fixed_completes_every_order_behind_it(
    client, stock, app_workers, rabbitmq, django_db_blocker
):
    # Given three orders whose shipping step was dead-lettered by one bug, since fixed
    ids = orders_stuck_on_a_broken_handler(client, stock, 3)
    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) != {"completed"}
    group = DeadLetterGroup.objects.get()
    assert group.handler == SHIP and group.exception_type == "PermanentError"
    assert group.message == f"{SHIP} is broken for order <uuid>"
    assert group.dead_letters().count() == 3
    staff_who_may(client, "view_deadlettergroup", "view_deadletter", "change_deadletter")
    page = client.get(reverse("admin:messaging_deadlettergroup_changelist")).content.decode()
    assert "PermanentError" in page and ">3<" in page

    # When staff redrive the group, done by the messaging queue's worker
    with workers_running(
        {"m": ("messaging-worker", ["messaging"], 1)}, worker_env(rabbitmq, django_db_blocker)
    ):
        response = client.post(
            reverse("admin:messaging_deadlettergroup_act", args=[group.pk]),
            {"action": "redrive", "reason": "the shipping bug is fixed"},
            follow=True,
        )
        assert "Redrive of 3 dead letters started" in response.content.decode()
        orders = [wait_until_closed(order_id, timeout=90) for order_id in ids]

        # Then every order behind it completes, and the run says so on the group's page
        assert {order.status for order in orders} == {"completed"}
        run = wait_for(
            lambda: DeadLetterGroupRun.objects.filter(finished_at__isnull=False).first(),
            what="the run to finish",
        )
    assert (run.total, run.done, run.skipped) == (3, 3, 0)
    page = client.get(reverse("admin:messaging_deadlettergroup_change", args=[group.pk]))
    assert "3 of 3 done" in page.content.decode()
    audits = DeadLetterAudit.objects.filter(action="redrive")
    assert audits.count() == 3
    assert {(a.reason, a.before["redriven_at"]) for a in audits} == {
        ("the shipping bug is fixed", None)
    }


def probe_letters(count: int) -> DeadLetterGroup:
    """Dead letters of the probe's ping handler, all of one cause."""
    for n in range(count):
        probe_letter(n)
    return DeadLetterGroup.objects.get()


def test_two_concurrent_redrives_of_one_group_send_each_letter_once(workers):
    # Given a group of 300 letters for the probe's queue, its worker held off it
    with consumer_paused(workers["a"], "probe_a"):
        purge_queues(["probe_a"])
        group = probe_letters(300)
        runs = [
            # (no task: each is run in a thread of this test, below)
            dead_letter_group_run_start(
                group=group, action="redrive", reason=f"staff {n}", actor=None, enqueue=id
            )
            for n in (1, 2)
        ]

        # When both runs go at once, in small batches
        together = threading.Barrier(2)

        def run_it(run_id: int) -> None:
            together.wait()
            try:
                dead_letter_group_run(run_id=run_id, batch_size=25)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run_it, args=(run.pk,)) for run in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        # Then each letter went to the queue once, and is recorded redriven once
        try:
            assert queue_depths(["probe_a"])["probe_a"] == 300
        finally:
            purge_queues(["probe_a"])
    assert set(group.dead_letters().values_list("redrive_count", flat=True)) == {1}
    assert DeadLetterAudit.objects.filter(action="redrive").count() == 300
    done = {run.reason: run.done for run in DeadLetterGroupRun.objects.all()}
    # (both took part: the letters were shared between them, not done twice)
    assert sum(done.values()) == 300 and all(done.values())
    assert all(run.finished_at for run in DeadLetterGroupRun.objects.all())


def row_counts() -> dict[str, int]:
    """Rows in every table of the default and the gateway's database."""
    counts = {}
    for alias in connections:
        with connections[alias].cursor() as cursor:
            for table in connections[alias].introspection.table_names(cursor):
                cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
                counts[f"{alias}.{table}"] = cursor.fetchone()[0]
    return counts


def test_a_dry_run_shows_what_the_handler_would_do_and_changes_nothing(client, stock, app_workers):
    # Given an order's dead-lettered shipping step, and staff who may edit dead letters
    [order_id] = orders_stuck_on_a_broken_handler(client, stock, 1)
    letter = DeadLetter.objects.get(handler=SHIP)
    staff_who_may(client, "view_deadletter", "change_deadletter", "edit_deadletter")
    url = reverse("admin:messaging_deadletter_edit", args=[letter.pk])
    payload = client.get(url).context["payload_text"]
    before = row_counts()

    # When they save a payload without its order id, the page says which field is wrong
    broken = json.loads(payload)
    del broken["order_id"]
    page = client.post(url, {"payload": json.dumps(broken), "save": "1"}).content.decode()
    assert "Refused:" in page and "order_id" in page and "Field required" in page
    assert row_counts() == before

    # When they dry-run its payload as it is
    page = client.post(url, {"payload": payload, "dry_run": "1"}).content.decode()

    # Then the page shows the shipment it would make and the event it would publish,
    assert "Dry run: nothing was kept" in page
    assert "shipping_shipment" in page and "ShipmentCreated" in page
    # and not a row changed anywhere, the outbox included
    assert row_counts() == before
    assert not OutboxMessage.objects.filter(type="ShipmentCreated", correlation_id=order_id)
    letter.refresh_from_db()
    assert letter.is_pending

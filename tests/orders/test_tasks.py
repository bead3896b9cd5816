"""Beat's purge of old placement keys, sent as beat sends it, to a real orders worker."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app
from orders.models import PlacementKey
from tests.orders.factories import OrderFactory
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def test_beats_purge_reaches_an_orders_worker_and_forgets_only_the_old_keys(app_workers):
    # Given a key past IDEMPOTENCY_KEY_RETENTION and one within it
    order = OrderFactory()
    old, _ = (
        PlacementKey.objects.create(source="api", key=key, fingerprint="f", order=order)
        for key in ("old", "recent")
    )
    past = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_RETENTION + 60)
    PlacementKey.objects.filter(pk=old.pk).update(created_at=past)

    # When beat's entry is sent as beat sends it (its task, queue and expiry)
    entry = settings.CELERY_BEAT_SCHEDULE["orders.placement_keys_purge"]
    app.send_task(entry["task"], **entry["options"])

    # Then the orders worker forgets the old key and keeps the other
    wait_for(
        lambda: not PlacementKey.objects.filter(pk=old.pk).exists(),
        timeout=30,
        what="the orders worker to purge the old key",
    )
    assert list(PlacementKey.objects.values_list("key", flat=True)) == ["recent"]

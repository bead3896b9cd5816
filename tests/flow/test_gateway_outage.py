"""The card gateway goes down: payments wait behind a shared circuit breaker, the rest goes on.

During the outage the breaker opens after a few refused calls, so the
payments workers stop calling the gateway and put each payment off without
using up its retries. Inventory and orders keep working meanwhile. Once the
gateway is back, a trial call closes the breaker and every order ends.
"""

import time

import pytest
from django.conf import settings
from django.utils import timezone

from gateway.models import Outage
from messaging.models import DeadLetter
from orders.models import Order
from payments import breaker
from tests.flow.conftest import place_orders
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

OUTAGE_SECONDS = 4


def test_orders_wait_out_a_gateway_outage_and_then_all_end(app_workers, stock, shared_breaker):
    sku = stock(on_hand=10, price="9.00")
    outage = Outage.objects.create(note="test drill")
    ids = place_orders(
        sku, workflows=["choreography", "orchestration"] * 4, email="outage@example.com"
    )

    # The breaker opens for every payments process
    wait_for(lambda: shared_breaker.current_state == "open", what="the breaker to open")
    # while the other apps keep working: a new product reaches the storefront.
    other_sku = stock(on_hand=3)
    time.sleep(OUTAGE_SECONDS)
    assert not Order.objects.filter(pk__in=ids).exclude(status="placed").exists()

    Outage.objects.filter(pk=outage.pk).update(ended_at=timezone.now())
    outage.refresh_from_db()
    refused, lasted = outage.refused_calls, (outage.ended_at - outage.started_at).total_seconds()

    wait_until_all_closed(ids)
    tally = assert_books_balance(ids, {sku: 10, other_sku: 3})
    assert tally.completed == len(ids)
    assert not DeadLetter.objects.exists()
    # Behind the breaker, the gateway saw the calls that tripped it and about
    # one trial a reset period, not one call per payment per retry.
    periods = lasted / settings.PAYMENT_GATEWAY_BREAKER_RESET
    assert refused <= settings.PAYMENT_GATEWAY_BREAKER_FAILURES + periods + 2, (refused, lasted)
    print(f"gateway outage: {tally}; {refused} calls refused in {lasted:.1f}s")


def test_declined_cards_are_answers_and_never_trip_the_breaker(shared_breaker):
    from decimal import Decimal

    from gateway import client as gateway

    token = gateway.tokenize(card_number="4000000000000002").token
    for attempt in range(settings.PAYMENT_GATEWAY_BREAKER_FAILURES + 2):
        with pytest.raises(gateway.CardDeclined):
            breaker.call(
                gateway.charge,
                token=token,
                amount=Decimal("5.00"),
                currency="EUR",
                idempotency_key=f"declined-{attempt}",
            )
    assert shared_breaker.current_state == "closed"


def test_without_redis_each_process_keeps_a_breaker_of_its_own(settings):
    from gateway import client as gateway

    settings.PAYMENT_GATEWAY_BREAKER_REDIS_URL = "redis://127.0.0.1:1/0"
    own = breaker.breaker()
    try:
        assert own is breaker._local_breaker()
        outage = Outage.objects.create(note="unit")
        for _ in range(settings.PAYMENT_GATEWAY_BREAKER_FAILURES - 1):
            with pytest.raises(gateway.GatewayUnavailable):
                breaker.call(gateway.charge_lookup, idempotency_key="nothing")
        # The call that trips the breaker, and every one after it, is put off
        for _ in range(3):
            with pytest.raises(breaker.DependencyUnavailable, match="circuit breaker is open"):
                breaker.call(gateway.charge_lookup, idempotency_key="nothing")
        # without reaching the gateway any more.
        outage.refresh_from_db()
        assert outage.refused_calls == settings.PAYMENT_GATEWAY_BREAKER_FAILURES
    finally:
        own.close()

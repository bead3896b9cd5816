"""The simulated gateway charges once per idempotency key, however often or concurrently asked."""

import threading
from decimal import Decimal

import pytest
from django.db import connections

from gateway import client as gateway
from gateway.models import Charge
from gateway.routers import GATEWAY_DB

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CARD = "4242 4242 4242 4242"


def test_asking_again_under_the_same_key_returns_the_first_charge():
    token = gateway.tokenize(card_number=CARD).token

    first = gateway.charge(
        token=token, amount=Decimal("12.50"), currency="EUR", idempotency_key="k1"
    )
    again = gateway.charge(
        token=token, amount=Decimal("12.50"), currency="EUR", idempotency_key="k1"
    )

    assert again == first
    charge = Charge.objects.get(idempotency_key="k1")
    assert (charge.charge_id, charge.amount, charge.attempts) == (
        first.charge_id,
        Decimal("12.50"),
        1,
    )


def test_a_different_charge_under_a_used_key_is_refused_and_changes_nothing():
    token = gateway.tokenize(card_number=CARD).token
    gateway.charge(token=token, amount=Decimal("5.00"), currency="EUR", idempotency_key="k2")

    with pytest.raises(gateway.GatewayError, match="used for a different charge"):
        gateway.charge(token=token, amount=Decimal("6.00"), currency="EUR", idempotency_key="k2")

    assert list(Charge.objects.values_list("amount", "attempts")) == [(Decimal("5.00"), 1)]


def test_the_same_charge_asked_from_several_threads_at_once_is_made_once():
    token = gateway.tokenize(card_number=CARD).token
    start = threading.Barrier(4)
    results, errors = [], []

    def ask() -> None:
        try:
            start.wait()
            results.append(
                gateway.charge(
                    token=token, amount=Decimal("9.00"), currency="EUR", idempotency_key="k3"
                )
            )
        except Exception as exc:  # reported below, never hidden
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({result.charge_id for result in results}) == 1
    charge = Charge.objects.using(GATEWAY_DB).get(idempotency_key="k3")
    assert (charge.status, charge.attempts) == (Charge.Status.SUCCEEDED, 1)

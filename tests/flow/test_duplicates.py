"""A duplicating publisher: every message is delivered twice, and every effect happens once.

With the fault on, each enqueue of every process (the web's and each
worker's) puts the same envelope on the queue twice, as a publisher that
retries after a lost confirm would. Orders run through both workflows, down
the happy path and every compensation.
"""

import pytest

from tests.flow.conftest import place_orders
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.support import faults

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

DECLINED = "4000000000000002"
VALID = "4242424242424242"


def skipped_duplicates(app_workers) -> int:
    return sum(
        "already handled" in line for worker in app_workers.values() for line in worker.lines
    )


def test_every_message_delivered_twice_takes_effect_once(app_workers, stock, stale_catalog):
    # Orders' copy of the catalog lets the too many and the unshippable through to the workers
    sku = stock(on_hand=4, price="7.00")
    stale_catalog(sku)
    before = skipped_duplicates(app_workers)
    cases = [
        # card, quantity, country: completes, completes, declined, no stock, unshippable
        (VALID, 1, "FR"),
        (VALID, 2, "FR"),
        (DECLINED, 1, "FR"),
        (VALID, 5, "FR"),
        (VALID, 1, "AQ"),
    ]
    with faults.injected(faults.DUPLICATE_PUBLISH):
        ids = [
            order_id
            for workflow in ("choreography", "orchestration")
            for card, quantity, country in cases
            for order_id in place_orders(
                sku,
                workflows=[workflow],
                email="twice@example.com",
                card_number=card,
                quantity=quantity,
                country=country,
            )
        ]
        wait_until_all_closed(ids)

    tally = assert_books_balance(ids, {sku: 4})
    # The duplicates really were delivered, and each one was recognised.
    assert skipped_duplicates(app_workers) - before >= len(ids)
    # Declined, too many and unshippable always cancel; stock for at least one remains.
    assert tally.cancelled >= 6
    assert tally.completed >= 1
    print(f"duplicating publisher: {tally}")

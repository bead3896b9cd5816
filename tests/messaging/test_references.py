"""The short reference people read for an id: in the emails, the admin's lists, the order."""

import uuid

from messaging.references import short_reference
from orders.models import Order


def test_a_uuid_reads_as_its_first_group_in_capitals():
    order_id = uuid.UUID("1a2b3c4d-0000-4000-8000-000000000000")

    assert short_reference(order_id) == "1A2B3C4D"
    assert short_reference(str(order_id)) == "1A2B3C4D"
    assert Order(id=order_id, status="placed").reference == "1A2B3C4D"
    assert str(Order(id=order_id, status="placed")) == "Order 1A2B3C4D (placed)"


def test_an_id_that_is_no_uuid_reads_as_it_is():
    assert short_reference("bench-run-7") == "bench-run-7"

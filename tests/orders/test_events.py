"""orders.events: what orders publishes stays readable as it grows."""

from orders.events import OrderPlaced
from tests.support.order_messages import OrderPlacedFactory


def test_an_order_placed_before_card_fingerprints_still_reads():
    # Given an OrderPlaced as it was written before it carried the card's fingerprint
    payload = OrderPlacedFactory().model_dump(mode="json")
    del payload["card_fingerprint"]

    # When it is read
    placed = OrderPlaced.model_validate(payload)

    # Then it reads, with no fingerprint
    assert placed.card_fingerprint == ""

"""The simulated gateway's card check: what it takes as a card number."""

import pytest

from gateway.client import InvalidCardNumber, card_number_normalize


@pytest.mark.parametrize(
    "typed", ["4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242"]
)
def test_a_valid_number_is_taken_in_any_usual_spelling(typed):
    assert card_number_normalize(typed) == "4242424242424242"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("4242 4242 4242 424²", "12 to 19 digits"),  # a superscript two is no digit
        ("４２４２４２４２４２４２４２４２", "12 to 19 digits"),  # full-width digits
        ("4242", "12 to 19 digits"),
        ("4242 4242 4242 4241", "not valid"),  # fails the Luhn check
    ],
)
def test_anything_else_is_refused_with_a_reason(typed, reason):
    with pytest.raises(InvalidCardNumber, match=reason):
        card_number_normalize(typed)

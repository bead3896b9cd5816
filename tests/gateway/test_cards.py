"""The simulated gateway's cards: what it takes as a card number, and the fingerprint of one."""

import hashlib
import re

import pytest

from gateway.client import InvalidCardNumber, card_fingerprint, card_number_normalize, tokenize
from gateway.models import CardToken


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


@pytest.mark.django_db(databases=["gateway"])
def test_a_card_has_one_fingerprint_whatever_its_token_or_spelling():
    # Given one card tokenized twice, typed two ways, and another card
    first = tokenize(card_number="4242 4242 4242 4242")
    again = tokenize(card_number="4242-4242-4242-4242")
    other = tokenize(card_number="4000 0000 0000 0002")

    # Then each token is new, but the card's fingerprint is the same
    assert first.token != again.token
    assert first.fingerprint == again.fingerprint != other.fingerprint
    # an HMAC-SHA256 in hex, which does not give the number away
    assert re.fullmatch(r"[0-9a-f]{64}", first.fingerprint)
    assert first.fingerprint == card_fingerprint("4242424242424242")
    assert first.fingerprint != hashlib.sha256(b"4242424242424242").hexdigest()
    # and the gateway keeps it with its token
    assert CardToken.objects.get(token=first.token).fingerprint == first.fingerprint

"""The simulated gateway's records, written on its own connection as its router sends them."""

import uuid
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from gateway.client import card_fingerprint
from gateway.models import CardToken, Charge, Outage
from gateway.routers import GATEWAY_DB

# The test cards (README, "Test cards").
VALID_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
TIMEOUT_CARD = "4000000000000119"


class CardTokenFactory(DjangoModelFactory):
    """A card exchanged for a token; a test card number chooses the gateway's answer."""

    class Meta:
        model = CardToken
        database = GATEWAY_DB

    token = factory.Sequence(lambda n: f"tok_test{n:08d}")
    card_number = VALID_CARD
    last4 = factory.LazyAttribute(lambda token: token.card_number[-4:])
    fingerprint = factory.LazyAttribute(lambda token: card_fingerprint(token.card_number))


class GatewayChargeFactory(DjangoModelFactory):
    """Money the gateway captured under an idempotency key."""

    class Meta:
        model = Charge
        database = GATEWAY_DB

    charge_id = factory.Sequence(lambda n: f"ch_test{n:08d}")
    idempotency_key = factory.Sequence(lambda n: f"order-{uuid.UUID(int=n)}")
    token = factory.LazyFunction(lambda: CardTokenFactory().token)
    amount = Decimal("20.00")
    currency = "EUR"
    status = Charge.Status.SUCCEEDED
    attempts = 1


class OutageFactory(DjangoModelFactory):
    """While it is on, the gateway refuses every connection."""

    class Meta:
        model = Outage
        database = GATEWAY_DB

    note = "unit test drill"

"""What the shop calls: tokenize a card, charge a token, refund a charge.

Charges and refunds are idempotent by the caller's key, as with a real
processor: asking again with the same key returns the first answer and never
moves money twice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from .models import CardToken, Charge, Outage, Refund
from .routers import GATEWAY_DB

DECLINED_CARDS = {
    "4000000000000002": ("card_declined", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
}
TIMEOUT_CARD = "4000000000000119"
# The key of the card fingerprints: the simulated processor's own secret. A
# fingerprint names a card across tokens without revealing its number.
FINGERPRINT_KEY = b"eventshop-simulated-gateway-card-fingerprint-v1"


class GatewayError(Exception):
    """The gateway refused a request; retrying the same request will not help."""


class CardDeclined(GatewayError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class GatewayTimeout(Exception):
    """The gateway did not answer in time; the same request may succeed later."""


class GatewayUnavailable(Exception):
    """The gateway could not be reached at all; nothing was done."""


class InvalidCardNumber(ValueError):
    pass


@dataclass(frozen=True)
class CardTokenResult:
    token: str
    last4: str
    # The same for every token of the same card number, as processors expose it.
    fingerprint: str


@dataclass(frozen=True)
class ChargeResult:
    charge_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    amount: Decimal


def card_number_normalize(card_number: str) -> str:
    """Digits only, checked for length and the Luhn checksum."""
    digits = "".join(ch for ch in card_number if ch not in " -")
    # ASCII digits only: str.isdigit() also takes "²" and full-width digits.
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19:
        raise InvalidCardNumber("Enter a card number of 12 to 19 digits.")
    total = 0
    for index, digit in enumerate(int(d) for d in reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    if total % 10:
        raise InvalidCardNumber("This card number is not valid (check the digits).")
    return digits


def card_fingerprint(digits: str) -> str:
    """A stable hash of a normalised card number: HMAC-SHA256 under the gateway's key, in hex."""
    return hmac.new(FINGERPRINT_KEY, digits.encode("ascii"), hashlib.sha256).hexdigest()


def tokenize(*, card_number: str) -> CardTokenResult:
    """Exchange a card number for a token and the card's fingerprint; raises InvalidCardNumber."""
    digits = card_number_normalize(card_number)
    token = CardToken.objects.create(
        token=f"tok_{secrets.token_hex(12)}",
        card_number=digits,
        last4=digits[-4:],
        fingerprint=card_fingerprint(digits),
    )
    return CardTokenResult(token=token.token, last4=token.last4, fingerprint=token.fingerprint)


def charge(*, token: str, amount: Decimal, currency: str, idempotency_key: str) -> ChargeResult:
    """Capture money from a tokenized card.

    Raises CardDeclined (final), GatewayTimeout (try again with the same key),
    GatewayUnavailable (nothing done; try again later) or GatewayError (the
    request itself is wrong).
    """
    _connect()
    _take_time()
    with transaction.atomic(using=GATEWAY_DB):
        # The first request under a key records the charge; a retry or a
        # duplicate finds it. INSERT ... ON CONFLICT DO NOTHING waits for a
        # concurrent insert of the same key to end; the row is then locked.
        Charge.objects.bulk_create(
            [
                Charge(
                    idempotency_key=idempotency_key,
                    charge_id=f"ch_{secrets.token_hex(12)}",
                    token=token,
                    amount=amount,
                    currency=currency,
                    status=Charge.Status.TIMED_OUT,
                )
            ],
            ignore_conflicts=True,
        )
        record = Charge.objects.select_for_update().get(idempotency_key=idempotency_key)
        if (record.token, record.amount, record.currency) != (token, amount, currency):
            raise GatewayError(f"idempotency key {idempotency_key} was used for a different charge")
        if record.status == Charge.Status.SUCCEEDED:
            return ChargeResult(record.charge_id, record.amount, record.currency)
        if record.status == Charge.Status.DECLINED:
            raise CardDeclined(record.decline_code, DECLINED_CARDS[_card(token)][1])
        record.attempts += 1
        card = _card(token)
        if card in DECLINED_CARDS:
            record.status = Charge.Status.DECLINED
            record.decline_code = DECLINED_CARDS[card][0]
        elif card == TIMEOUT_CARD and record.attempts <= settings.PAYMENT_GATEWAY_TIMEOUTS:
            record.status = Charge.Status.TIMED_OUT
        else:
            record.status = Charge.Status.SUCCEEDED
        record.save()
    if record.status == Charge.Status.DECLINED:
        raise CardDeclined(record.decline_code, DECLINED_CARDS[card][1])
    if record.status == Charge.Status.TIMED_OUT:
        raise GatewayTimeout(f"the gateway timed out charging {idempotency_key}")
    return ChargeResult(record.charge_id, record.amount, record.currency)


def charge_lookup(*, idempotency_key: str) -> ChargeResult | None:
    """The charge made under this key, if one succeeded (a processor's "retrieve")."""
    _connect()
    record = Charge.objects.filter(
        idempotency_key=idempotency_key, status=Charge.Status.SUCCEEDED
    ).first()
    return ChargeResult(record.charge_id, record.amount, record.currency) if record else None


def refund(*, charge_id: str, amount: Decimal, idempotency_key: str) -> RefundResult:
    """Give back money from a charge, never more than it captured."""
    _connect()
    _take_time()
    with transaction.atomic(using=GATEWAY_DB):
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return RefundResult(existing.refund_id, existing.amount)
        record = Charge.objects.select_for_update().filter(charge_id=charge_id).first()
        if record is None or record.status != Charge.Status.SUCCEEDED:
            raise GatewayError(f"no captured charge {charge_id}")
        if amount <= 0 or record.refunded + amount > record.amount:
            raise GatewayError(
                f"cannot refund {amount}: {record.amount - record.refunded} left of {charge_id}"
            )
        created = Refund.objects.create(
            refund_id=f"re_{secrets.token_hex(12)}",
            idempotency_key=idempotency_key,
            charge=record,
            amount=amount,
        )
        Charge.objects.filter(pk=record.pk).update(refunded=F("refunded") + amount)
    return RefundResult(created.refund_id, created.amount)


def _card(token: str) -> str:
    found = CardToken.objects.filter(token=token).values_list("card_number", flat=True).first()
    if found is None:
        raise GatewayError(f"unknown card token {token}")
    return found


def _connect() -> None:
    # The simulated network: during an outage the connection is refused.
    if Outage.objects.filter(ended_at__isnull=True).update(refused_calls=F("refused_calls") + 1):
        raise GatewayUnavailable("could not connect to the card gateway: connection refused")


def _take_time() -> None:
    if settings.PAYMENT_GATEWAY_LATENCY > 0:
        time.sleep(settings.PAYMENT_GATEWAY_LATENCY)

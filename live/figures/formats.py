"""How the figures write amounts and moments: strings, as JSON carries them without loss."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

CENTS = Decimal("0.01")


def amount(value: Decimal | int | None) -> str:
    return str(Decimal(value or 0).quantize(CENTS))


def amounts(by_currency: dict[str, Decimal]) -> dict[str, str]:
    return {currency: amount(value) for currency, value in sorted(by_currency.items())}


def moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def age(value: datetime | None, now: datetime) -> float | None:
    """Seconds from ``value`` to ``now``, to a tenth; None for no moment."""
    return round((now - value).total_seconds(), 1) if value is not None else None

"""Each step of an order as its customer reads it: the event in words, and where it leaves it.

The order page, the API's timeline and the live push all describe a step
here, from the event's type and payload alone (the push has no database
row to look at), so the three always say the same thing. A type this module
does not know still shows, under its own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Why an order was cancelled, as the customer is told it. A refusal of the
# payment means nothing was ever taken; the other reasons come with a refund
# step of their own when something was.
CANCELLED_BECAUSE = {
    "card_declined": "card declined, nothing was charged",
    "insufficient_funds": "the card has insufficient funds, nothing was charged",
    "gateway_error": "the payment could not be taken, nothing was charged",
    "suspected_fraud": "we could not accept this payment, nothing was charged",
    "out_of_stock": "out of stock",
    "shipping_failed": "the parcel could not be shipped",
    "order_cancelled": "cancelled on request",
    "staff": "cancelled by our staff",
    "deadline": "not completed in time",
}


def reason_refunded(reason: str) -> str:
    """Why an order was cancelled, once the money it took went back: one sentence,
    e.g. "Out of stock: PEN-005 (50 ordered, 10 available); the payment was refunded"."""
    reason = reason.strip().rstrip(".")
    return f"{reason}; the payment was refunded" if reason else "The payment was refunded"


@dataclass(frozen=True)
class Step:
    title: str
    detail: str = ""
    # The status the order has once this step happened ("" when it does not move it).
    status: str = ""
    tone: str = "neutral"  # good, bad or neutral: how the page colours it
    # What the page shows beside the steps (the parcel, the money), when the step says it.
    facts: Mapping[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["facts"] = dict(self.facts or {})
        return fields


def _money(payload: Mapping[str, Any], key: str = "amount") -> str:
    return f"{payload.get(key, '')} {payload.get('currency', '')}".strip()


def _placed(p: Mapping[str, Any]) -> Step:
    units = sum(int(line.get("quantity", 0)) for line in p.get("lines", []))
    items = f"{units} item{'s' if units != 1 else ''}"
    return Step("Order placed", f"{items}, {_money(p, 'total')}", "placed")


def _screened(p: Mapping[str, Any]) -> Step:
    if p.get("verdict") == "suspected_fraud":
        return Step("Payment refused by our checks", "", "", "bad")
    return Step("Payment checks passed")


def _paid(p: Mapping[str, Any]) -> Step:
    return Step("Payment received", _money(p), "paid", "good", {"charged": _money(p)})


def _refunded(p: Mapping[str, Any]) -> Step:
    refunded = _money(p)
    return Step(f"Refunded {refunded}", p.get("reason", ""), "", "neutral", {"refunded": refunded})


def _shipped(p: Mapping[str, Any]) -> Step:
    carrier, tracking = p.get("carrier", ""), p.get("tracking_number", "")
    facts = {"carrier": carrier, "tracking_number": tracking}
    return Step(f"Packed and handed to {carrier}", f"Tracking {tracking}", "shipped", "good", facts)


def _completed(p: Mapping[str, Any]) -> Step:
    tracking = p.get("tracking_number", "")
    return Step("Order complete", f"Tracking {tracking}" if tracking else "", "completed", "good")


def _cancelled(p: Mapping[str, Any]) -> Step:
    because = CANCELLED_BECAUSE.get(p.get("reason_code", ""), p.get("reason", ""))
    title = f"Cancelled: {because}" if because else "Cancelled"
    return Step(title, p.get("reason", ""), "cancelled", "bad")


def _because(title: str, tone: str = "bad"):
    return lambda p: Step(title, p.get("reason", ""), "", tone)


DESCRIBE = {
    "OrderPlaced": _placed,
    "OrderScreened": _screened,
    "PaymentProcessed": _paid,
    "PaymentFailed": _because("Payment failed"),
    "PaymentRefunded": _refunded,
    "PaymentDeferred": lambda p: Step("Payment delayed", p.get("reason", "")),
    "PaymentVoided": lambda p: Step("Payment cancelled: nothing was charged", p.get("reason", "")),
    "InventoryReserved": lambda p: Step("In stock and set aside for you", "", "reserved", "good"),
    "InventoryReservationFailed": _because("Out of stock"),
    "InventoryReleased": lambda p: Step("Items put back on the shelf"),
    "InventoryReleaseFailed": _because("The items had already left", "neutral"),
    "ShipmentCreated": _shipped,
    "ShipmentFailed": _because("The parcel could not be shipped"),
    "ShipmentCancelled": lambda p: Step("Shipment cancelled"),
    "ShipmentCancelFailed": _because("The parcel is already on its way", "neutral"),
    "OrderCompleted": _completed,
    "OrderCancelled": _cancelled,
}


def describe(message_type: str, payload: Mapping[str, Any]) -> Step:
    """The step an event of this type and payload is, in a customer's words."""
    describer = DESCRIBE.get(message_type)
    return describer(payload) if describer else Step(message_type)


def step_entry(
    *,
    message_type: str,
    payload: Mapping[str, Any],
    message_id: str,
    occurred_at: str,
    **extra: Any,
) -> dict[str, Any]:
    """One step as the page, the API and the push send it: the words, plus the event's identity."""
    return {
        "type": message_type,
        "message_id": message_id,
        "occurred_at": occurred_at,
        **extra,
        **describe(message_type, payload).as_dict(),
    }

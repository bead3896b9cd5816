"""Message schemas, the envelope and the registry: pure logic, no broker."""

import uuid

import pytest
from django.utils import timezone

from messaging.messages import (
    Envelope,
    Event,
    InvalidPayload,
    MessageError,
    UnknownMessage,
    envelope_read,
    registry,
)
from tests.probe.events import ProbePinged


class StockCounted(Event):
    sku: str
    quantity: int


class StockCountedV2(Event):
    message_type = "StockCounted"
    message_version = 2
    sku: str
    on_hand: int
    warehouse: str = "main"


def _envelope(message_type: str, version: int, payload: dict, kind: str = "event") -> Envelope:
    return Envelope(
        message_id=uuid.uuid4(),
        kind=kind,
        type=message_type,
        version=version,
        occurred_at=timezone.now(),
        correlation_id="c-1",
        payload=payload,
    )


def test_subclassing_registers_under_type_and_version():
    assert registry.get("StockCounted", 1) is StockCounted
    assert registry.get("StockCounted", 2) is StockCountedV2
    assert StockCountedV2.message_type == "StockCounted"


def test_unknown_fields_are_ignored_and_optional_fields_take_defaults():
    # A newer producer added "bin"; an older one never sent "warehouse".
    message = registry.read(_envelope("StockCounted", 2, {"sku": "A", "on_hand": 3, "bin": "7"}))
    assert message == StockCountedV2(sku="A", on_hand=3, warehouse="main")


def test_unknown_version_names_the_known_ones():
    with pytest.raises(UnknownMessage, match=r"StockCounted.*version 9.*known versions: \[1, 2\]"):
        registry.read(_envelope("StockCounted", 9, {}))


def test_payload_failing_its_schema_says_which_field():
    with pytest.raises(InvalidPayload, match="quantity: Input should be a valid integer"):
        registry.read(_envelope("StockCounted", 1, {"sku": "A", "quantity": "many"}))


def test_a_command_envelope_cannot_carry_an_event():
    with pytest.raises(UnknownMessage, match="is a event, not a command"):
        registry.read(_envelope("StockCounted", 1, {"sku": "A", "quantity": 1}, kind="command"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("not an object", "expected an envelope object, got str"),
        ({"type": "ProbePinged"}, "message_id: Field required"),
        (
            {
                "message_id": "not-a-uuid",
                "kind": "event",
                "type": "ProbePinged",
                "version": 1,
                "occurred_at": "2026-01-01T00:00:00Z",
                "correlation_id": "c",
                "payload": {},
            },
            "message_id: Input should be a valid UUID",
        ),
        (
            {
                "message_id": str(uuid.uuid4()),
                "kind": "event",
                "type": "ProbePinged",
                "version": 1,
                "occurred_at": "2026-01-01T00:00:00",
                "correlation_id": "c",
                "payload": {},
            },
            "occurred_at: Input should have timezone info",
        ),
    ],
)
def test_malformed_envelopes_are_rejected_with_the_reason(data, expected):
    with pytest.raises(MessageError, match=expected):
        envelope_read(data)


def test_envelope_round_trips_through_json():
    envelope = _envelope("ProbePinged", 1, ProbePinged(probe_id="p").model_dump(mode="json"))
    assert envelope_read(envelope.to_wire()) == envelope


def test_registering_another_class_under_a_taken_name_fails():
    with pytest.raises(TypeError, match="StockCounted v1 is already defined"):

        class StockCounted(Event):  # the clash with the module's StockCounted is the point
            other: str = ""

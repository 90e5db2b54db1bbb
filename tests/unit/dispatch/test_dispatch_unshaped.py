"""An event a trigger cannot build its payload from is set aside as a failed attempt;
the rest of its batch is still delivered."""

from __future__ import annotations

import orjson

from triggerfish.bus.base import Delivery
from triggerfish.dispatch.shapes import PayloadMode, shape
from triggerfish.events.model import Event

TOO_DEEP = b"[" * 300 + b"]" * 300  # parses, but cannot be written back as JSON


def delivery(n: int, data: bytes) -> Delivery:
    event = Event(id=f"e{n}", source="shop", type="t", datacontenttype="application/json",
                  data=data)  # fmt: skip
    return Delivery(topic="orders", group="g", offset=n, event=event, attempt=1,
                    published_at=1_800_000_000.0, lease_until=0.0)  # fmt: skip


def test_a_single_event_that_cannot_be_shaped_is_a_failed_attempt() -> None:
    bad = delivery(1, TOO_DEEP)
    shaped = shape("cloudevent", [bad], batched=False, topic="orders")
    assert shaped.payload is None
    assert shaped.unshaped == [bad]
    failure = shaped.failure("cloudevent")
    assert (failure.status, failure.error_type) == ("error", "PayloadError")
    assert "cannot build its cloudevent payload" in (failure.error_message or "")
    assert "Recursion limit" in (failure.error_message or "")


def test_a_batch_is_delivered_without_the_event_that_cannot_be_shaped() -> None:
    good, bad, other = delivery(1, b'{"n":1}'), delivery(2, TOO_DEEP), delivery(3, b"[3]")
    modes: tuple[PayloadMode, ...] = ("cloudevent", "eventbridge", "data")
    for mode in modes:
        shaped = shape(mode, [good, bad, other], batched=True, topic="orders")
        assert shaped.unshaped == [bad], mode
        assert list(shaped.deliveries) == [good, other]
        assert shaped.payload is not None
        assert len(orjson.loads(shaped.payload)) == 2


def test_events_that_can_be_shaped_are_untouched() -> None:
    events = [delivery(1, b'{"n":1}'), delivery(2, b"[2]")]
    shaped = shape("sqs", events, batched=True, topic="orders")
    assert shaped.unshaped == []
    assert list(shaped.deliveries) == events

from __future__ import annotations

import pytest

from triggerfish.context import Context, current_context, emit, set_current_context
from triggerfish.errors import ValidationError


def test_context_without_emitter_keeps_what_was_emitted() -> None:
    context = Context(aws_request_id="r", function_name="f")
    context.emit("orders", "order.created", {"id": 1}, subject="o-1")
    (event,) = context.emitted
    assert (event.topic, event.type, event.data, event.subject) == (
        "orders",
        "order.created",
        {"id": 1},
        "o-1",
    )


def test_emit_chains_the_triggering_cloud_event() -> None:
    trigger = {"specversion": "1.0", "id": "e-2", "source": "/s", "type": "t"}
    context = Context(aws_request_id="r", function_name="f", payload=trigger)
    context.emit("next", "step.done", None, extensions={"tenant": "acme"})
    assert context.emitted[0].extensions == {
        "causationid": "e-2",
        "correlationid": "e-2",
        "tenant": "acme",
    }
    assert context.event_id == "e-2"
    assert context.event_source == "/s"


def test_plain_payload_is_not_taken_for_a_cloud_event() -> None:
    context = Context(aws_request_id="r", function_name="f", payload={"id": "x"})
    assert context.event is None
    assert context.event_id is None


@pytest.mark.parametrize(
    ("topic", "type_", "extensions"),
    [("", "t", None), ("topic", "", None), ("topic", "t", {"bad": 1.5})],
)
def test_emit_rejects_what_cannot_be_published(
    topic: str, type_: str, extensions: dict[str, object] | None
) -> None:
    context = Context(aws_request_id="r", function_name="f")
    with pytest.raises(ValidationError):
        context.emit(topic, type_, None, extensions=extensions)  # type: ignore[arg-type]
    assert context.emitted == []


def test_module_level_emit_uses_the_running_invocations_context() -> None:
    context = Context(aws_request_id="r", function_name="f")
    with pytest.raises(ValidationError):
        emit("t", "x")
    set_current_context(context)
    try:
        assert current_context() is context
        emit("t", "x", 1)
    finally:
        set_current_context(None)
    assert [event.topic for event in context.emitted] == ["t"]


def test_remaining_time_never_goes_below_zero() -> None:
    context = Context(aws_request_id="r", function_name="f", deadline=0.0)
    assert context.get_remaining_time_in_millis() == 0

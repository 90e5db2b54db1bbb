"""The rules for the updates the Durable Execution SDK checkpoints, the timers that
come due and the callbacks that complete, without a store."""

from __future__ import annotations

import pytest

from triggerfish.durable import operations as ops
from triggerfish.errors import ValidationError


def update(kind: str, action: str, **fields: object) -> dict[str, object]:
    return {"Id": "op-1", "Type": kind, "Action": action, **fields}


def test_a_step_retry_counts_the_attempt_and_becomes_ready_when_due() -> None:
    started = ops.apply(update("STEP", "START", Name="charge"), None, 10.0).document
    assert (started["Status"], started["StepDetails"]["Attempt"]) == ("STARTED", 0)
    error = {"ErrorType": "ConnectionError", "ErrorMessage": "down"}
    retry = ops.apply(
        update("STEP", "RETRY", Error=error, StepOptions={"NextAttemptDelaySeconds": 5}),
        started,
        11.0,
    )
    assert retry.document["Status"] == "PENDING"
    assert retry.document["StepDetails"]["Attempt"] == 1
    assert retry.due_at == 16.0
    ready = ops.fire(retry.document, 16.0)
    assert ready is not None
    assert ready["Status"] == "READY"
    again = ops.apply(update("STEP", "START"), ready, 16.5).document
    done = ops.apply(update("STEP", "SUCCEED", Payload='"ok"'), again, 17.0).document
    assert done["Status"] == "SUCCEEDED"
    assert done["StepDetails"]["Result"] == '"ok"'
    assert done["StepDetails"]["Attempt"] == 1
    assert done["Name"] == "charge"


def test_a_wait_ends_when_its_timer_fires() -> None:
    wait = ops.apply(update("WAIT", "START", WaitOptions={"WaitSeconds": 30}), None, 100.0)
    assert wait.due_at == 130.0
    assert wait.document["WaitDetails"]["ScheduledEndTimestamp"] == 130.0
    ended = ops.fire(wait.document, 130.0)
    assert ended is not None
    assert (ended["Status"], ended["EndTimestamp"]) == ("SUCCEEDED", 130.0)


def test_a_callback_gets_an_id_and_times_out_or_completes() -> None:
    options = {"TimeoutSeconds": 60, "HeartbeatTimeoutSeconds": 0}
    started = ops.apply(update("CALLBACK", "START", CallbackOptions=options), None, 0.0)
    callback_id = started.document["CallbackDetails"]["CallbackId"]
    assert started.callback == callback_id
    assert started.due_at == 60.0
    assert ops.PRIVATE not in ops.wire(started.document)
    timed_out = ops.fire(started.document, 60.0)
    assert timed_out is not None
    assert timed_out["Status"] == "TIMED_OUT"
    assert timed_out["CallbackDetails"]["Error"]["ErrorType"] == "Callback.Timeout"
    done = ops.complete_callback(started.document, 5.0, result='{"ok": true}')
    assert done["Status"] == "SUCCEEDED"
    assert done["CallbackDetails"] == {"CallbackId": callback_id, "Result": '{"ok": true}'}


def test_a_fired_timer_that_no_longer_applies_changes_nothing() -> None:
    done = ops.apply(update("STEP", "SUCCEED", Payload="1"), None, 0.0).document
    assert ops.fire(done, 10.0) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"Id": "x", "Type": "STEP"}, "Action must be one of"),
        ({"Id": "x", "Type": "TIMER", "Action": "START"}, "Type must be one of"),
        ({"Type": "STEP", "Action": "START"}, "Id of 1 to 128"),
        (
            {"Id": "x", "Type": "STEP", "Action": "SUCCEED", "Payload": "x" * (256 * 1024 + 1)},
            "the limit is 262,144 bytes",
        ),
    ],
)
def test_a_bad_update_is_refused_saying_what_is_wrong(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ops.check_update(entry)


def test_an_action_a_type_does_not_have_is_refused() -> None:
    with pytest.raises(ValidationError, match="a WAIT operation does not take the action RETRY"):
        ops.apply(update("WAIT", "RETRY"), None, 0.0)

"""How a durable execution's operations change: the rules Lambda applies to the
updates the Durable Execution SDK checkpoints, to the timers that come due and to the
callbacks that complete, as pure functions over Lambda's ``Operation`` documents.

A document is what ``GetDurableExecutionState`` returns (timestamps as Unix seconds),
plus a ``Triggerfish`` member the wire never shows: what the platform keeps to act on
the operation later (a callback's timeouts, the function a chained invoke runs).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triggerfish.errors import ValidationError

Document = dict[str, Any]

TYPES = ("EXECUTION", "CONTEXT", "STEP", "WAIT", "CALLBACK", "CHAINED_INVOKE")
ACTIONS = ("START", "SUCCEED", "FAIL", "RETRY", "CANCEL")
ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"})
#: The SDK's own limit on one operation's checkpointed payload (``CHECKPOINT_SIZE_LIMIT``).
PAYLOAD_LIMIT = 256 * 1024
#: An execution's result is returned as an invocation's: up to Lambda's 6 MB.
RESULT_LIMIT = 6 * 1024 * 1024
#: Lambda's bound on one wait and on a callback's timeouts: a year.
MAX_WAIT_SECONDS = 31_622_400
PRIVATE = "Triggerfish"

_DETAILS = {
    "STEP": "StepDetails",
    "WAIT": "WaitDetails",
    "CALLBACK": "CallbackDetails",
    "CONTEXT": "ContextDetails",
    "CHAINED_INVOKE": "ChainedInvokeDetails",
    "EXECUTION": "ExecutionDetails",
}


@dataclass(slots=True)
class Change:
    """What one update did: the operation's new document and timer, the outcome of the
    execution when the update ended it, and a function to invoke for a chained invoke."""

    document: Document
    due_at: float | None = None
    callback: str | None = None
    outcome: tuple[str, str | None, Document | None] | None = None
    invoke: tuple[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def wire(document: Mapping[str, Any]) -> Document:
    """The document as Lambda's API shows it."""
    return {key: value for key, value in document.items() if key != PRIVATE}


def execution_document(execution_id: str, payload: str, now: float) -> Document:
    return {
        "Id": execution_id,
        "Type": "EXECUTION",
        "Status": "STARTED",
        "StartTimestamp": now,
        "ExecutionDetails": {"InputPayload": payload},
    }


def new_callback_id() -> str:
    return secrets.token_urlsafe(24)


def check_update(update: Any) -> None:
    """``ValidationError`` saying what is wrong with one entry of ``Updates``."""
    if not isinstance(update, Mapping):
        raise ValidationError("each entry of Updates must be an object", field="Updates")
    op_id = update.get("Id")
    if not isinstance(op_id, str) or not 1 <= len(op_id) <= 128:
        raise ValidationError("an update needs an Id of 1 to 128 characters", field="Id")
    if update.get("Type") not in TYPES:
        raise ValidationError(
            f"update {op_id}: Type must be one of {', '.join(TYPES)}", field="Type"
        )
    if update.get("Action") not in ACTIONS:
        raise ValidationError(
            f"update {op_id}: Action must be one of {', '.join(ACTIONS)}", field="Action"
        )
    payload = update.get("Payload")
    if payload is not None and not isinstance(payload, str):
        raise ValidationError(f"update {op_id}: Payload must be a string", field="Payload")
    limit = RESULT_LIMIT if update["Type"] == "EXECUTION" else PAYLOAD_LIMIT
    if payload is not None and len(payload.encode()) > limit:
        raise ValidationError(
            f"update {op_id}: Payload is {len(payload.encode()):,} bytes; the limit is "
            f"{limit:,} bytes (checkpoint large results in child contexts or keep them in "
            "a bucket and checkpoint their key)",
            field="Payload",
        )


def apply(update: Mapping[str, Any], current: Document | None, now: float) -> Change:
    """The change ``update`` (a checked ``OperationUpdate``) makes to the operation
    whose document is ``current`` (None: not seen yet); ``ValidationError`` for an
    action its type does not have."""
    kind, action, op_id = update["Type"], update["Action"], update["Id"]
    doc: Document = dict(current) if current is not None else _new(update, now)
    details_key = _DETAILS[kind]
    details: Document = dict(doc.get(details_key) or {})
    private: Document = dict(doc.get(PRIVATE) or {})
    payload, error = update.get("Payload"), update.get("Error")
    change = Change(doc)
    if kind == "EXECUTION":
        if action == "SUCCEED":
            _end(doc, "SUCCEEDED", now)
            change.outcome = ("SUCCEEDED", payload, None)
        elif action == "FAIL":
            _end(doc, "FAILED", now)
            change.outcome = ("FAILED", None, error)
        else:
            raise _unsupported(op_id, kind, action)
    elif kind == "STEP":
        if action == "START":
            details.setdefault("Attempt", 0)
            details.pop("NextAttemptTimestamp", None)
            doc["Status"] = "STARTED"
        elif action == "SUCCEED":
            details["Result"] = payload
            _end(doc, "SUCCEEDED", now)
        elif action == "FAIL":
            details["Error"] = error
            _end(doc, "FAILED", now)
        elif action == "RETRY":
            delay = int((update.get("StepOptions") or {}).get("NextAttemptDelaySeconds", 0))
            details["Attempt"] = int(details.get("Attempt", 0)) + 1
            details["NextAttemptTimestamp"] = now + max(delay, 0)
            if error is not None:
                details["Error"] = error
            if payload is not None:  # the state of a wait_for_condition
                details["Result"] = payload
            doc["Status"] = "PENDING"
            change.due_at = details["NextAttemptTimestamp"]
        else:
            raise _unsupported(op_id, kind, action)
    elif kind == "WAIT":
        if action == "START":
            seconds = int((update.get("WaitOptions") or {}).get("WaitSeconds", 1))
            if not 1 <= seconds <= MAX_WAIT_SECONDS:
                raise ValidationError(
                    f"update {op_id}: WaitSeconds must be from 1 to {MAX_WAIT_SECONDS}",
                    field="WaitSeconds",
                )
            details["ScheduledEndTimestamp"] = now + seconds
            doc["Status"] = "STARTED"
            change.due_at = details["ScheduledEndTimestamp"]
        elif action == "CANCEL":
            _end(doc, "CANCELLED", now)
        else:
            raise _unsupported(op_id, kind, action)
    elif kind == "CALLBACK":
        if action != "START":
            raise _unsupported(op_id, kind, action)
        if current is None:
            options = update.get("CallbackOptions") or {}
            timeout = int(options.get("TimeoutSeconds", 0))
            heartbeat = int(options.get("HeartbeatTimeoutSeconds", 0))
            details["CallbackId"] = new_callback_id()
            private["timeout_at"] = now + timeout if timeout > 0 else None
            private["heartbeat"] = heartbeat or None
            doc["Status"] = "STARTED"
            change.callback = details["CallbackId"]
            change.due_at = callback_due(private, now)
    elif kind == "CONTEXT":
        if action == "START":
            doc["Status"] = "STARTED"
        elif action == "SUCCEED":
            details["Result"] = payload
            _end(doc, "SUCCEEDED", now)
        elif action == "FAIL":
            details["Error"] = error
            _end(doc, "FAILED", now)
        else:
            raise _unsupported(op_id, kind, action)
        replay = (update.get("ContextOptions") or {}).get("ReplayChildren")
        if replay:
            details["ReplayChildren"] = True
    else:  # CHAINED_INVOKE
        if action != "START":
            raise _unsupported(op_id, kind, action)
        if current is None:
            options = update.get("ChainedInvokeOptions") or {}
            target = options.get("FunctionName")
            if not isinstance(target, str) or not target:
                raise ValidationError(
                    f"update {op_id}: ChainedInvokeOptions.FunctionName is required",
                    field="FunctionName",
                )
            private["function"] = target
            doc["Status"] = "STARTED"
            change.invoke = (target, payload if payload is not None else "{}")
    doc[details_key] = details
    if private:
        doc[PRIVATE] = private
    return change


def callback_due(private: Mapping[str, Any], now: float) -> float | None:
    """When a callback times out: its timeout, or sooner a missed heartbeat."""
    times = [private.get("timeout_at")]
    if private.get("heartbeat"):
        times.append(now + float(private["heartbeat"]))
    present = [t for t in times if t is not None]
    return min(present) if present else None


def fire(document: Document, now: float) -> Document | None:
    """The document once its timer came due: a wait ends, a step's retry becomes
    ready, a callback times out; None when the timer no longer applies."""
    doc = dict(document)
    kind, status = doc.get("Type"), doc.get("Status")
    if kind == "WAIT" and status == "STARTED":
        _end(doc, "SUCCEEDED", now)
        return doc
    if kind == "STEP" and status == "PENDING":
        doc["Status"] = "READY"
        return doc
    if kind == "CALLBACK" and status == "STARTED":
        private = doc.get(PRIVATE) or {}
        timeout_at = private.get("timeout_at")
        which = "Timeout" if timeout_at is not None and timeout_at <= now else "Heartbeat"
        details = dict(doc.get("CallbackDetails") or {})
        details["Error"] = {
            "ErrorType": f"Callback.{which}",
            "ErrorMessage": f"the callback timed out ({which.lower()})",
        }
        doc["CallbackDetails"] = details
        _end(doc, "TIMED_OUT", now)
        return doc
    return None


def complete_callback(
    document: Document, now: float, *, result: str | None = None, error: Document | None = None
) -> Document:
    """The callback's document once its result (or error) arrived."""
    kept = dict(document.get("CallbackDetails") or {})
    return _completed(document, "CallbackDetails", kept, now, result, error)


def complete_invoke(
    document: Document, now: float, *, result: str | None, error: Document | None
) -> Document:
    """The chained invoke's document once the function it ran returned."""
    return _completed(document, "ChainedInvokeDetails", {}, now, result, error)


def _completed(
    document: Document,
    key: str,
    details: Document,
    now: float,
    result: str | None,
    error: Document | None,
) -> Document:
    """``document`` ended: ``SUCCEEDED`` with ``result`` in ``details`` (under ``key``),
    or ``FAILED`` with ``error``."""
    doc = dict(document)
    if error is None:
        details["Result"] = result
        _end(doc, "SUCCEEDED", now)
    else:
        details["Error"] = error
        _end(doc, "FAILED", now)
    doc[key] = details
    return doc


def _new(update: Mapping[str, Any], now: float) -> Document:
    doc: Document = {"Id": update["Id"], "Type": update["Type"], "StartTimestamp": now}
    for key in ("ParentId", "Name", "SubType"):
        if update.get(key):
            doc[key] = update[key]
    return doc


def _end(doc: Document, status: str, now: float) -> None:
    doc["Status"] = status
    doc["EndTimestamp"] = now


def _unsupported(op_id: str, kind: str, action: str) -> ValidationError:
    return ValidationError(
        f"update {op_id}: a {kind} operation does not take the action {action}", field="Action"
    )

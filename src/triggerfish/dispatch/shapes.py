"""What a handler receives from a trigger: the CloudEvent, or the shape AWS Lambda code
expects (``event_format``).

- ``cloudevent``: the CloudEvent as JSON (``Event.to_dict``); a batch is a list of them.
- ``aws``: the event's ``data`` as it is (a bucket's ``{"Records": [...]}``, a schedule's
  EventBridge "Scheduled Event"); a batch merges the ``Records`` of every event, or is a
  list of the data.
- ``eventbridge``: ``{version, id, detail-type, source, account, time, region, resources,
  detail}``; a batch is a list of them.
- ``sqs``: ``{"Records": [...]}`` with one SQS message per event.

For batches, a handler may answer ``{"batchItemFailures": [{"itemIdentifier": id}]}``
(Lambda's ``ReportBatchItemFailures``): only those items are retried. The identifier is
the event id (the SQS ``messageId``).

``shape`` builds the payload and sets aside the events it cannot be built from (data
nested too deeply to read or write as JSON, say): the runner fails their attempt as it
fails an invocation, and invokes the function with the rest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from triggerfish.bus.base import Delivery
from triggerfish.events.model import Event
from triggerfish.ids import new_id
from triggerfish.runtime.base import InvocationResult

PayloadMode = Literal["cloudevent", "data", "eventbridge", "sqs"]
REGION = "local"
ACCOUNT = "000000000000"


def _data(event: Event) -> Any:
    try:
        return event.data_value()
    except ValueError:
        return base64.b64encode(event.data or b"").decode("ascii")


def _cloudevent(event: Event) -> dict[str, Any]:
    return event.to_dict(strict=True)


def eventbridge_event(event: Event) -> dict[str, Any]:
    """The EventBridge envelope of a CloudEvent: type -> detail-type, data -> detail,
    subject -> resources."""
    return {
        "version": "0",
        "id": event.id,
        "detail-type": event.type,
        "source": event.source,
        "account": ACCOUNT,
        "time": event.time or _now(),
        "region": REGION,
        "resources": [event.subject] if event.subject else [],
        "detail": _data(event) if event.data is not None else {},
    }


def sqs_record(delivery: Delivery, topic: str) -> dict[str, Any]:
    """One SQS message as Lambda's SQS event source hands it over: the data as ``body``
    (its JSON text, or the text), attributes from the bus, extensions as attributes."""
    event = delivery.event
    body = (event.data or b"").decode("utf-8", errors="replace")
    sent = str(int(delivery.published_at * 1000))
    return {
        "messageId": event.id,
        "receiptHandle": f"{topic}:{delivery.group}:{delivery.offset}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(delivery.attempt),
            "SentTimestamp": sent,
            "SenderId": event.source,
            "ApproximateFirstReceiveTimestamp": sent,
        },
        "messageAttributes": {
            name: {"stringValue": str(value), "dataType": "String"}
            for name, value in {"type": event.type, **event.extensions}.items()
        },
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{topic}",
        "awsRegion": REGION,
    }


def payload(
    mode: PayloadMode, deliveries: Sequence[Delivery], *, batched: bool, topic: str
) -> bytes:
    events = [d.event for d in deliveries]
    if mode == "sqs":
        return orjson.dumps({"Records": [sqs_record(d, topic) for d in deliveries]})
    if mode == "data":
        if not batched:
            return events[0].data or b"null"
        values = [_data(e) for e in events]
        if all(isinstance(v, dict) and isinstance(v.get("Records"), list) for v in values):
            return orjson.dumps({"Records": [r for v in values for r in v["Records"]]})
        return orjson.dumps(values)
    shape = eventbridge_event if mode == "eventbridge" else _cloudevent
    if not batched:
        return orjson.dumps(shape(events[0]))
    return orjson.dumps([shape(e) for e in events])


@dataclass(slots=True)
class Shaped:
    """The payload of ``deliveries`` (None when there are none), and the deliveries it
    could not be built from, with why."""

    payload: bytes | None
    deliveries: Sequence[Delivery]
    unshaped: list[Delivery] = field(default_factory=list)
    error: str = ""

    def failure(self, mode: PayloadMode) -> InvocationResult:
        """The outcome of the unshaped deliveries' attempt, as the dead letter tells it."""
        return InvocationResult(
            request_id=new_id(),
            status="error",
            error_type="PayloadError",
            error_message=f"the trigger cannot build its {mode} payload from the event: "
            f"{self.error}",
        )


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def shape(
    mode: PayloadMode, deliveries: Sequence[Delivery], *, batched: bool, topic: str
) -> Shaped:
    """``payload``, setting aside the deliveries it cannot be built from."""
    try:
        return Shaped(payload(mode, deliveries, batched=batched, topic=topic), deliveries)
    except Exception as exc:
        if not batched or len(deliveries) == 1:
            return Shaped(None, [], list(deliveries), _why(exc))
        error = _why(exc)
    kept: list[Delivery] = []
    unshaped: list[Delivery] = []
    for delivery in deliveries:
        try:
            payload(mode, [delivery], batched=True, topic=topic)
        except Exception as exc:
            unshaped.append(delivery)
            error = _why(exc)
        else:
            kept.append(delivery)
    try:
        built = payload(mode, kept, batched=True, topic=topic) if kept else None
    except Exception as exc:  # only together: none of them can be delivered
        return Shaped(None, [], list(deliveries), _why(exc))
    return Shaped(built, kept, unshaped, error)


def failed_items(result: bytes | None) -> set[str] | None:
    """The item ids a batch handler reported as failed, or None when it reported none
    in Lambda's ``batchItemFailures`` shape."""
    if not result:
        return None
    try:
        answer = orjson.loads(result)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("batchItemFailures"), list):
        return None
    return {
        str(item["itemIdentifier"])
        for item in answer["batchItemFailures"]
        if isinstance(item, dict) and "itemIdentifier" in item
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

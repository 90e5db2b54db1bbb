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
from triggerfish.events import sqs
from triggerfish.events.eventbridge import RESOURCES
from triggerfish.events.model import Event, json_extension
from triggerfish.ids import new_id
from triggerfish.runtime.base import ACCOUNT, DEFAULT_REGION, InvocationResult
from triggerfish.sources.buckets.notifications import eventbridge_event as s3_eventbridge_event

PayloadMode = Literal["cloudevent", "data", "eventbridge", "sqs"]


def _data(event: Event) -> Any:
    try:
        return event.data_value()
    except ValueError:
        return base64.b64encode(event.data or b"").decode("ascii")


def _cloudevent(event: Event) -> dict[str, Any]:
    return event.to_dict(strict=True)


def eventbridge_event(event: Event, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The EventBridge envelope of a CloudEvent: type -> detail-type, data -> detail,
    subject -> resources (all of them from a ``resources`` extension, as ``PutEvents``
    keeps them), in the node's ``region``. A change of a bucket is shaped as S3 sends
    it to EventBridge."""
    try:
        s3 = s3_eventbridge_event(event, account=ACCOUNT)
    except (KeyError, TypeError):  # an S3-like event that is not one of the store's
        s3 = None
    if s3 is not None:
        return s3
    return {
        "version": "0",
        "id": event.id,
        "detail-type": event.type,
        "source": event.source,
        "account": ACCOUNT,
        "time": event.time or _now(),
        "region": region,
        "resources": _resources(event),
        "detail": _data(event) if event.data is not None else {},
    }


def _resources(event: Event) -> list[str]:
    value = json_extension(event, RESOURCES)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return [event.subject] if event.subject else []


def sqs_record(delivery: Delivery, topic: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """One SQS message as Lambda's SQS event source hands it over: the data as ``body``
    (its JSON text, or the text), attributes from the bus, extensions as attributes."""
    event = delivery.event
    body = (event.data or b"").decode("utf-8", errors="replace")
    sent = str(int(delivery.published_at * 1000))
    attributes = {
        "ApproximateReceiveCount": str(delivery.attempt),
        "SentTimestamp": sent,
        "SenderId": event.source,
        "ApproximateFirstReceiveTimestamp": sent,
    }
    record: dict[str, Any] = {
        "messageId": event.id,
        "receiptHandle": f"{topic}:{delivery.group}:{delivery.offset}",
        "body": body,
        "attributes": attributes,
    }
    if sqs.is_message(event):  # sent with SendMessage: its own attributes, as sent
        extra, message_attributes = sqs.record_parts(event)
        attributes.update(extra)
        if "MessageGroupId" in extra:
            attributes["SequenceNumber"] = str(delivery.offset)
        record["messageAttributes"] = message_attributes
        if message_attributes:
            record["md5OfMessageAttributes"] = sqs.lambda_md5_of_attributes(message_attributes)
    else:
        record["messageAttributes"] = {
            name: {"stringValue": str(value), "dataType": "String"}
            for name, value in {"type": event.type, **event.extensions}.items()
        }
    return record | {
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:{ACCOUNT}:{topic}",
        "awsRegion": region,
    }


def payload(
    mode: PayloadMode,
    deliveries: Sequence[Delivery],
    *,
    batched: bool,
    topic: str,
    region: str = DEFAULT_REGION,
) -> bytes:
    """The handler's payload of ``deliveries`` in ``mode``; AWS's shapes name ``region``."""
    events = [d.event for d in deliveries]
    if mode == "sqs":
        return orjson.dumps({"Records": [sqs_record(d, topic, region) for d in deliveries]})
    if mode == "data":
        if not batched:
            return events[0].data or b"null"
        values = [_data(e) for e in events]
        if all(isinstance(v, dict) and isinstance(v.get("Records"), list) for v in values):
            return orjson.dumps({"Records": [r for v in values for r in v["Records"]]})
        return orjson.dumps(values)
    if mode == "eventbridge":
        if not batched:
            return orjson.dumps(eventbridge_event(events[0], region))
        return orjson.dumps([eventbridge_event(e, region) for e in events])
    if not batched:
        return orjson.dumps(_cloudevent(events[0]))
    return orjson.dumps([_cloudevent(e) for e in events])


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
    mode: PayloadMode,
    deliveries: Sequence[Delivery],
    *,
    batched: bool,
    topic: str,
    region: str = DEFAULT_REGION,
) -> Shaped:
    """``payload``, setting aside the deliveries it cannot be built from."""
    try:
        whole = payload(mode, deliveries, batched=batched, topic=topic, region=region)
        return Shaped(whole, deliveries)
    except Exception as exc:
        if not batched or len(deliveries) == 1:
            return Shaped(None, [], list(deliveries), _why(exc))
        error = _why(exc)
    kept: list[Delivery] = []
    unshaped: list[Delivery] = []
    for delivery in deliveries:
        try:
            payload(mode, [delivery], batched=True, topic=topic, region=region)
        except Exception as exc:
            unshaped.append(delivery)
            error = _why(exc)
        else:
            kept.append(delivery)
    try:
        built = payload(mode, kept, batched=True, topic=topic, region=region) if kept else None
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

"""Object changes as events: S3's notification record inside a CloudEvent.

Every change of a bucket is published to topic ``_bucket.<bucket>`` as a CloudEvent:

- ``type``: ``com.amazonaws.s3.<event name>`` (``com.amazonaws.s3.ObjectCreated:Put``),
- ``source``: ``s3://<bucket>``; ``subject``: the object key as stored (not encoded),
- ``id``: the change's sequencer (16 hex digits, increasing with every change in the
  store), so publishing the same change twice is a duplicate the bus drops,
- ``time``: the record's ``eventTime``; ``partitionkey``: the key,
- ``data``: ``{"Records": [record]}`` with one record shaped as AWS shapes it (event
  version 2.1), the key URL-encoded with ``+`` for spaces as S3 does.

``eventbridge_event`` gives the same change as S3 sends it to EventBridge ("Object
Created", "Object Deleted"), for triggers with ``event_format: eventbridge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from triggerfish.events.create import new_event
from triggerfish.events.model import Event
from triggerfish.functions.triggers import BUCKET_EVENT_TYPE

CONFIGURATION_ID = "triggerfish"
OWNER = "triggerfish"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the access key that signed the request, and from where."""

    principal: str = OWNER
    source_ip: str = "127.0.0.1"
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    event_name: str  # "ObjectCreated:Put", "ObjectRemoved:Delete" ...
    bucket: str
    key: str
    size: int | None = None  # None for removals
    etag: str | None = None  # without quotes
    modified: float = 0.0


def encode_key(key: str) -> str:
    """The key as S3 writes it in notifications: URL-encoded, spaces as '+'."""
    return quote_plus(key, safe="/")


def event_time(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def sequencer_text(value: int) -> str:
    return f"{value:016X}"


def record(change: Change, sequencer: str, *, region: str, actor: Actor) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": encode_key(change.key)}
    if change.size is not None:
        obj["size"] = change.size
    if change.etag is not None:
        obj["eTag"] = change.etag
    obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time(change.modified),
        "eventName": change.event_name,
        "userIdentity": {"principalId": actor.principal},
        "requestParameters": {"sourceIPAddress": actor.source_ip},
        "responseElements": {
            "x-amz-request-id": actor.request_id or sequencer,
            "x-amz-id-2": f"triggerfish/{sequencer}",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": CONFIGURATION_ID,
            "bucket": {
                "name": change.bucket,
                "ownerIdentity": {"principalId": OWNER},
                "arn": f"arn:aws:s3:::{change.bucket}",
            },
            "object": obj,
        },
    }


def change_event(change: Change, sequence: int, *, region: str, actor: Actor) -> Event:
    sequencer = sequencer_text(sequence)
    body = {"Records": [record(change, sequencer, region=region, actor=actor)]}
    return new_event(
        BUCKET_EVENT_TYPE + change.event_name,
        f"s3://{change.bucket}",
        body,
        subject=change.key,
        id=sequencer,
        time=event_time(change.modified),
        extensions={"partitionkey": change.key},
    )


#: The EventBridge ``detail-type`` and ``reason`` of each change, as S3 sends them there.
_EVENTBRIDGE = {
    "ObjectCreated:Put": ("Object Created", "PutObject"),
    "ObjectCreated:Post": ("Object Created", "POST Object"),
    "ObjectCreated:Copy": ("Object Created", "CopyObject"),
    "ObjectCreated:CompleteMultipartUpload": ("Object Created", "CompleteMultipartUpload"),
    "ObjectRemoved:Delete": ("Object Deleted", "DeleteObject"),
    "ObjectRemoved:DeleteMarkerCreated": ("Object Deleted", "DeleteObject"),
}

#: The fields of a record's ``s3.object`` as EventBridge's ``detail.object`` names them.
_OBJECT_FIELDS = (
    ("size", "size"),
    ("eTag", "etag"),
    ("versionId", "version-id"),
    ("sequencer", "sequencer"),
)


def _record(event: Event) -> dict[str, Any] | None:
    """The S3 record a change event carries, or None."""
    try:
        value = event.data_value()
    except ValueError:
        return None
    records = value.get("Records") if isinstance(value, dict) else None
    first = records[0] if isinstance(records, list) and records else None
    if isinstance(first, dict) and first.get("eventSource") == "aws:s3":
        return first
    return None


def eventbridge_event(event: Event, *, account: str) -> dict[str, Any] | None:
    """A change event as S3 sends it to EventBridge (``detail-type`` "Object Created" or
    "Object Deleted", ``source`` "aws.s3", the key as stored, not encoded); None for an
    event that is not a change of an object."""
    if not event.type.startswith(BUCKET_EVENT_TYPE) or event.data is None:
        return None
    shape = _EVENTBRIDGE.get(event.type[len(BUCKET_EVENT_TYPE) :])
    first = _record(event) if shape is not None else None
    if shape is None or first is None:
        return None
    detail_type, reason = shape
    s3 = first["s3"]
    stored = s3["object"]
    obj: dict[str, Any] = {"key": event.subject or unquote_plus(stored["key"])}
    for name, field in _OBJECT_FIELDS:
        if name in stored:
            obj[field] = stored[name]
    bucket = s3["bucket"]["name"]
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": first["responseElements"]["x-amz-request-id"],
        "requester": first["userIdentity"]["principalId"],
        "source-ip-address": first["requestParameters"]["sourceIPAddress"],
        "reason": reason,
    }
    if detail_type == "Object Deleted":
        marker = event.type.endswith("DeleteMarkerCreated")
        detail["deletion-type"] = "Delete Marker Created" if marker else "Permanently Deleted"
    return {
        "version": "0",
        "id": event.id,
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account,
        # EventBridge's times are to the second.
        "time": first["eventTime"][:19] + "Z",
        "region": first["awsRegion"],
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }

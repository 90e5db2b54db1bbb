"""SQS messages as events: what ``SendMessage`` keeps of a message, and how a trigger
with ``event_format: sqs`` gets it back as the record SQS hands to Lambda.

A message is a CloudEvent of type ``com.amazonaws.sqs.message`` whose data is the body
as sent (``text/plain``), with extensions for what SQS keeps beside it:
``messageattributes`` (the message attributes as Lambda's record shows them, as JSON
text), ``messagegroupid``, ``deduplicationid`` and ``senderid`` (the access key
that sent it). Its source is ``aws.sqs``: with a deduplication id, the event id is
derived from the queue and that id, so the bus drops a second send of it within its
deduplication window, whoever sends it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from triggerfish.errors import ValidationError
from triggerfish.events.create import new_event
from triggerfish.events.model import Event, json_extension

MESSAGE_TYPE = "com.amazonaws.sqs.message"
SOURCE = "aws.sqs"
ATTRIBUTES = "messageattributes"
GROUP_ID = "messagegroupid"
DEDUPLICATION_ID = "deduplicationid"
SENDER_ID = "senderid"
#: The most an SQS message (body and attributes) may have, and a batch in all.
MAX_MESSAGE_SIZE = 262_144
MAX_ATTRIBUTES = 10
_NAMESPACE = uuid.UUID("6b5c1d0e-5f0a-4c3e-9a57-2f1e8c7d4b10")


class MessageError(ValidationError):
    """A message SQS would refuse; ``code`` is SQS's name for why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, field="message")
        self.code = code


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _value_bytes(attribute: Mapping[str, Any]) -> tuple[int, bytes]:
    """The transport type (1 string, 2 binary) and the bytes of an attribute's value."""
    if "BinaryValue" in attribute:
        return 2, _binary(attribute["BinaryValue"])
    return 1, str(attribute.get("StringValue", "")).encode("utf-8")


def _binary(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        raise MessageError("InvalidParameterValue", "a BinaryValue is not base64") from None


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """``MD5OfMessageAttributes``: the digest SQS computes over the attributes sorted by
    name, each as length-prefixed name, data type, transport type and value."""
    out = bytearray()
    for name in sorted(attributes):
        attribute = attributes[name]
        for text in (name, str(attribute.get("DataType", ""))):
            raw = text.encode("utf-8")
            out += len(raw).to_bytes(4, "big") + raw
        transport, value = _value_bytes(attribute)
        out += bytes([transport]) + len(value).to_bytes(4, "big") + value
    return md5_hex(bytes(out))


def check_attributes(attributes: Any) -> dict[str, dict[str, Any]]:
    """The message attributes of a request, checked as SQS checks them."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise MessageError("InvalidParameterValue", "MessageAttributes must be a map")
    if len(attributes) > MAX_ATTRIBUTES:
        raise MessageError(
            "InvalidParameterValue",
            f"a message has at most {MAX_ATTRIBUTES} MessageAttributes; this one has "
            f"{len(attributes)}",
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, attribute in attributes.items():
        if not isinstance(attribute, dict) or not isinstance(attribute.get("DataType"), str):
            raise MessageError(
                "InvalidParameterValue", f"message attribute {name!r} needs a DataType"
            )
        kind = attribute["DataType"].split(".", 1)[0]
        if kind not in ("String", "Number", "Binary"):
            raise MessageError(
                "InvalidParameterValue",
                f"message attribute {name!r} has DataType {attribute['DataType']!r}; it must "
                "start with String, Number or Binary",
            )
        field = "BinaryValue" if kind == "Binary" else "StringValue"
        if field not in attribute:
            raise MessageError(
                "InvalidParameterValue", f"message attribute {name!r} of type {kind} needs {field}"
            )
        if kind == "Binary":
            _binary(attribute[field])
        checked[str(name)] = {"DataType": attribute["DataType"], field: attribute[field]}
    return checked


def message_size(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> int:
    size = len(body.encode("utf-8"))
    for name, attribute in attributes.items():
        size += len(name.encode("utf-8")) + len(str(attribute["DataType"]).encode("utf-8"))
        size += len(_value_bytes(attribute)[1])
    return size


def message_event(
    queue: str,
    body: Any,
    *,
    attributes: Mapping[str, Mapping[str, Any]],
    group_id: str | None,
    deduplication_id: str | None,
    sender: str,
) -> Event:
    """The event of one ``SendMessage``; ``MessageError`` for a message SQS refuses."""
    if not isinstance(body, str) or not body:
        raise MessageError(
            "MissingParameter", "The request must contain the parameter MessageBody."
        )
    size = message_size(body, attributes)
    if size > MAX_MESSAGE_SIZE:
        raise MessageError(
            "InvalidParameterValue",
            f"One or more parameters are invalid. Reason: Message must be shorter than "
            f"{MAX_MESSAGE_SIZE} bytes.",
        )
    extensions: dict[str, str | int | bool] = {SENDER_ID: sender}
    if attributes:
        shown = {name: _lambda_attribute(a) for name, a in attributes.items()}
        extensions[ATTRIBUTES] = orjson.dumps(shown).decode()
    for name, value in ((GROUP_ID, group_id), (DEDUPLICATION_ID, deduplication_id)):
        if value is not None:
            if not isinstance(value, str) or not 1 <= len(value) <= 128:
                raise MessageError(
                    "InvalidParameterValue", f"{name} must be 1 to 128 characters long"
                )
            extensions[name] = value
    event_id = None
    if deduplication_id is not None:
        event_id = str(uuid.uuid5(_NAMESPACE, f"{queue}\x00{group_id or ''}\x00{deduplication_id}"))
    return new_event(
        MESSAGE_TYPE,
        SOURCE,
        body.encode("utf-8"),
        id=event_id if event_id is not None else str(uuid.uuid4()),
        datacontenttype="text/plain; charset=utf-8",
        extensions=extensions,
    )


def _lambda_attribute(attribute: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    if "BinaryValue" in attribute:
        shown["binaryValue"] = base64.b64encode(_binary(attribute["BinaryValue"])).decode()
    else:
        shown["stringValue"] = attribute["StringValue"]
    shown |= {"stringListValues": [], "binaryListValues": [], "dataType": attribute["DataType"]}
    return shown


def is_message(event: Event) -> bool:
    return event.type == MESSAGE_TYPE and event.source == SOURCE


def record_parts(event: Event) -> tuple[dict[str, str], dict[str, Any]]:
    """For a message event: the ``attributes`` it adds to the SQS record (group and
    deduplication ids, sender) and its ``messageAttributes``."""
    extra: dict[str, str] = {}
    names = (
        ("SenderId", SENDER_ID),
        ("MessageGroupId", GROUP_ID),
        ("MessageDeduplicationId", DEDUPLICATION_ID),
    )
    for field, name in names:
        value = event.extensions.get(name)
        if isinstance(value, str):
            extra[field] = value
    value = json_extension(event, ATTRIBUTES)
    attributes: dict[str, Any] = value if isinstance(value, dict) else {}
    return extra, attributes


def lambda_md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """``md5OfMessageAttributes`` of a record, from its Lambda-shaped attributes."""
    sent = {
        name: (
            {"DataType": a["dataType"], "BinaryValue": a["binaryValue"]}
            if "binaryValue" in a
            else {"DataType": a["dataType"], "StringValue": a.get("stringValue", "")}
        )
        for name, a in attributes.items()
    }
    return md5_of_attributes(sent)

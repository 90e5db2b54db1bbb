"""The JSON event format of CloudEvents: one event as a JSON object, or a batch as an array.

Reading (``parse_structured``, ``parse_batch``, ``event_from_dict``) turns JSON into
validated ``Event`` values; writing (``to_structured_json``, ``to_batch_json``) is the
reverse, and the two round-trip.

How ``data`` becomes the event's bytes:

- JSON content type (absent, ``*/json``, ``*+json``): the member's JSON text, compacted
  without reparsing numbers, so large integers and exact decimals survive;
- any other content type: the member must be a string, kept as its UTF-8 bytes;
- ``data_base64``: the decoded bytes; giving both ``data`` and ``data_base64`` is an error.

An attribute whose value is ``null`` counts as absent; JSON data that is ``null`` is
kept as the JSON text ``null``. Members that are not core attributes
are extensions, whose values must be strings, integers or booleans.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import orjson

from triggerfish.errors import EventValidationError
from triggerfish.events.depth import MAX_DEPTH, check_depth
from triggerfish.events.model import (
    CORE_ATTRIBUTES,
    Event,
    is_json_content_type,
    is_text_content_type,
)
from triggerfish.events.validate import quoted, validate_event

_MISSING: Any = object()


_Members = dict[str, msgspec.Raw]


def _decode_json(body: bytes, what: str, shape: type[Any], expected: str) -> Any:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventValidationError(
            f"{what} is not valid UTF-8 (byte {exc.start}); JSON event bodies must be UTF-8"
        ) from exc
    try:
        return msgspec.json.decode(body, type=shape)
    except msgspec.ValidationError as exc:
        raise EventValidationError(f"{what} must be {expected}") from exc
    except msgspec.DecodeError as exc:
        raise EventValidationError(f"{what} is not valid JSON: {exc}") from exc


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, msgspec.Raw) and bytes(value) == b"null")


def _structured_data(members: Mapping[str, Any], content_type: Any) -> bytes | None:
    """The event's data bytes from the ``data`` / ``data_base64`` members (raw or parsed)."""
    data = members.get("data", _MISSING)
    data_b64 = members.get("data_base64", _MISSING)
    if isinstance(data_b64, msgspec.Raw):
        data_b64 = msgspec.json.decode(data_b64)
    if data_b64 is None:
        data_b64 = _MISSING
    if _is_null(data) and (data_b64 is not _MISSING or not is_json_content_type(content_type)):
        data = _MISSING
    if data is not _MISSING and data_b64 is not _MISSING:
        raise EventValidationError(
            "an event must not have both 'data' and 'data_base64'; send one of them",
            field="data",
        )
    if data_b64 is not _MISSING:
        if not isinstance(data_b64, str):
            raise EventValidationError(
                f"'data_base64' must be a base64 string (got {quoted(data_b64)})",
                field="data_base64",
            )
        try:
            return base64.b64decode(data_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EventValidationError(
                f"'data_base64' is not valid base64 ({exc}); encode the bytes with standard "
                "base64 (RFC 4648, with padding)",
                field="data_base64",
            ) from exc
    if data is _MISSING:
        return None
    if is_json_content_type(content_type):
        if isinstance(data, msgspec.Raw):
            return msgspec.json.format(bytes(data), indent=-1)
        try:
            return orjson.dumps(data)
        except TypeError as exc:
            raise EventValidationError(
                f"'data' cannot be written as JSON: {exc}", field="data"
            ) from exc
    value = msgspec.json.decode(data) if isinstance(data, msgspec.Raw) else data
    if not isinstance(value, str):
        raise EventValidationError(
            f"'data' must be a string when datacontenttype is {quoted(content_type)}, "
            "which is not JSON; send the text as a string, binary data as 'data_base64', "
            "or declare a JSON content type",
            field="data",
        )
    return value.encode("utf-8")


def _event_from_members(members: Mapping[str, Any]) -> Event:
    values: dict[str, Any] = {}
    for name, member in members.items():
        if name in ("data", "data_base64"):
            continue
        value = msgspec.json.decode(member) if isinstance(member, msgspec.Raw) else member
        if value is not None:
            values[name] = value
    attributes = {name: values.pop(name) for name in CORE_ATTRIBUTES if name in values}
    event = Event(
        id=attributes.get("id", ""),
        source=attributes.get("source", ""),
        type=attributes.get("type", ""),
        specversion=attributes.get("specversion", ""),
        subject=attributes.get("subject"),
        time=attributes.get("time"),
        datacontenttype=attributes.get("datacontenttype"),
        dataschema=attributes.get("dataschema"),
        extensions=values,
    )
    validate_event(event)
    data = _structured_data(members, event.datacontenttype)
    if data is None:
        return event
    return msgspec.structs.replace(event, data=data)


def event_from_dict(obj: Mapping[str, Any]) -> Event:
    """A validated ``Event`` from the JSON structured form already parsed into a dict."""
    if not isinstance(obj, Mapping):
        raise EventValidationError(
            f"an event must be a JSON object (got {type(obj).__name__}) with its attributes"
        )
    return _event_from_members(obj)


def parse_structured(body: bytes, *, max_depth: int = MAX_DEPTH) -> Event:
    """A validated ``Event`` from an ``application/cloudevents+json`` body, whose data
    nests at most ``max_depth`` levels deep."""
    check_depth(body, max_depth, levels_above=1)
    members: _Members = _decode_json(
        body, "the structured event body", _Members, "a JSON object of the event's attributes"
    )
    return _event_from_members(members)


def parse_batch(body: bytes, *, max_depth: int = MAX_DEPTH) -> list[Event]:
    """Validated events from an ``application/cloudevents-batch+json`` body.

    An error names the position of the event at fault, as ``event [2]: ...``.
    """
    check_depth(body, max_depth, what="the data of an event of the batch", levels_above=2)
    items: list[msgspec.Raw] = _decode_json(
        body,
        "the event batch",
        list[msgspec.Raw],
        "a JSON array of event objects; send a single event as application/cloudevents+json",
    )
    events: list[Event] = []
    for index, item in enumerate(items):
        try:
            members = msgspec.json.decode(item, type=_Members)
        except msgspec.ValidationError:
            raise EventValidationError(
                f"event [{index}]: must be a JSON object of the event's attributes"
            ) from None
        try:
            events.append(_event_from_members(members))
        except EventValidationError as exc:
            raise EventValidationError(f"event [{index}]: {exc}", field=exc.field) from exc
    return events


def _structured_object(event: Event) -> tuple[dict[str, Any], bytes | None]:
    """The event's attributes, and its data as JSON text when it can travel as ``data``."""
    out = event.attributes()
    data = event.data
    if data is None:
        return out, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and is_json_content_type(event.datacontenttype):
        try:
            return out, msgspec.json.format(data, indent=-1)
        except msgspec.DecodeError:
            pass  # declared JSON but is not: the bytes travel as base64
    elif text is not None and is_text_content_type(event.datacontenttype):
        out["data"] = text
        return out, None
    out["data_base64"] = base64.b64encode(data).decode("ascii")
    return out, None


def to_structured_json(event: Event) -> bytes:
    """The event as an ``application/cloudevents+json`` body (compact UTF-8 JSON)."""
    out, json_data = _structured_object(event)
    head = orjson.dumps(out)
    if json_data is None:
        return head
    # Splice the data's own JSON text in, so numbers are never reparsed (and rounded).
    return head[:-1] + b',"data":' + json_data + b"}"


def to_batch_json(events: Iterable[Event]) -> bytes:
    """The events as an ``application/cloudevents-batch+json`` body."""
    return b"[" + b",".join(to_structured_json(event) for event in events) + b"]"

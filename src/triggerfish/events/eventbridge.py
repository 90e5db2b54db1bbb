"""EventBridge ``PutEvents`` entries as events.

An entry becomes a CloudEvent on the topic its ``EventBusName`` names (the bus name, or
the last part of a bus ARN, is the topic; no name, or ``default``, is the topic
``default``): ``Source`` -> ``source``, ``DetailType`` -> ``type``, ``Detail`` ->
``data`` (the JSON object as sent), ``Time`` -> ``time``, the first of ``Resources`` ->
``subject`` (all of them in the ``resources`` extension when there are several). A
trigger with ``event_format: eventbridge`` gets back the envelope EventBridge delivers
(``dispatch.shapes.eventbridge_event``).

``EntryError`` is a refused entry, with EventBridge's ``ErrorCode``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from triggerfish.errors import TriggerfishError, ValidationError
from triggerfish.events.create import new_event
from triggerfish.events.model import Event

DEFAULT_BUS = "default"
MAX_ENTRIES = 10
#: The most all entries of one request may have, counted as EventBridge counts them.
MAX_REQUEST_SIZE = 262_144
RESOURCES = "resources"
_TIME_SIZE = 14


class EntryError(TriggerfishError):
    """An entry EventBridge would refuse: ``code`` is its ``ErrorCode``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def bus_topic(entry: dict[str, Any]) -> str:
    """The topic an entry goes to."""
    name = entry.get("EventBusName")
    if name is None or name == "":
        return DEFAULT_BUS
    if not isinstance(name, str):
        raise EntryError("InvalidArgument", "EventBusName must be a string")
    if name.startswith("arn:"):
        name = name.rpartition("/")[2]
    return name


def entry_size(entry: Any) -> int:
    """An entry's size as EventBridge counts it against the request's limit."""
    if not isinstance(entry, dict):
        return 0
    size = _TIME_SIZE if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        value = entry.get(name)
        if isinstance(value, str):
            size += len(value.encode("utf-8"))
    resources = entry.get("Resources")
    if isinstance(resources, list):
        size += sum(len(r.encode("utf-8")) for r in resources if isinstance(r, str))
    return size


def _required(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise EntryError(
            "InvalidArgument",
            f"Parameter {name} is not valid. Reason: {name} is a required argument.",
        )
    return value


def _time(value: Any) -> str | None:
    """An entry's ``Time`` (seconds since the epoch as botocore sends it, or ISO 8601) as
    an RFC 3339 timestamp."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        else:
            raise ValueError(value)
    except (ValueError, OverflowError, OSError):
        raise EntryError("InvalidArgument", "Parameter Time is not valid.") from None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_event(entry: Any) -> Event:
    """The event of one entry; ``EntryError`` when EventBridge would refuse it."""
    if not isinstance(entry, dict):
        raise EntryError("InvalidArgument", "an entry must be an object")
    source = _required(entry, "Source")
    detail_type = _required(entry, "DetailType")
    detail_text = _required(entry, "Detail")
    if source.startswith("aws."):
        raise EntryError("NotAuthorizedForSourceException", "Not authorized for the source.")
    try:
        detail = orjson.loads(detail_text)
    except orjson.JSONDecodeError:
        detail = None
    if not isinstance(detail, dict):
        raise EntryError("MalformedDetail", "Detail is malformed.")
    resources = entry.get("Resources") or []
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise EntryError("InvalidArgument", "Parameter Resources is not valid.")
    extensions: dict[str, str | int | bool] = {}
    if len(resources) > 1:
        extensions[RESOURCES] = orjson.dumps(resources).decode()
    try:
        return new_event(
            detail_type,
            source,
            detail_text.encode("utf-8"),
            id=str(uuid.uuid4()),
            time=_time(entry.get("Time")),
            subject=resources[0] if resources else None,
            extensions=extensions,
        )
    except ValidationError as exc:
        raise EntryError("InvalidArgument", str(exc)) from None

"""Making new events: ``new_event`` fills what a producer should not have to think about.

An id is a 26-character sortable identifier (48 bits of milliseconds since the epoch,
then 80 random bits, in Crockford base32), so ids issued later sort later across
processes to the millisecond. ``time`` is now, in RFC 3339 UTC with microseconds.
The result has passed ``validate_event``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from triggerfish.errors import EventValidationError
from triggerfish.events.model import Event, ExtensionValue, is_json_content_type
from triggerfish.events.validate import validate_event
from triggerfish.ids import new_id


def new_event_id() -> str:
    """A fresh event id that sorts by creation time, like a ULID."""
    return new_id()


def now_rfc3339() -> str:
    """The current time as an RFC 3339 UTC timestamp with microseconds, ending in ``Z``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_data(data: Any, datacontenttype: str | None) -> bytes | None:
    """The data bytes for a value: bytes as they are, JSON for JSON types, text as UTF-8."""
    if data is None or isinstance(data, bytes):
        return data
    if is_json_content_type(datacontenttype):
        try:
            return orjson.dumps(data)
        except TypeError as exc:
            raise EventValidationError(
                f"data cannot be written as JSON ({exc}); pass JSON-compatible values "
                "(dict, list, str, int, float, bool, None) or bytes",
                field="data",
            ) from exc
    if isinstance(data, str):
        return data.encode("utf-8")
    raise EventValidationError(
        f"data for datacontenttype {datacontenttype!r} must be bytes or str "
        f"(got {type(data).__name__}); use a JSON content type to send other values",
        field="data",
    )


def new_event(
    type: str,
    source: str,
    data: Any,
    *,
    subject: str | None = None,
    id: str | None = None,
    time: str | None = None,
    extensions: Mapping[str, ExtensionValue] | None = None,
    datacontenttype: str | None = "application/json",
) -> Event:
    """A validated event; ``data`` is encoded as JSON unless it is already ``bytes``.

    With a non-JSON ``datacontenttype``, ``data`` must be ``str`` (sent as UTF-8) or
    ``bytes``. ``data=None`` makes an event without data.
    """
    event = Event(
        id=id if id is not None else new_event_id(),
        source=source,
        type=type,
        subject=subject,
        time=time if time is not None else now_rfc3339(),
        datacontenttype=datacontenttype,
        data=encode_data(data, datacontenttype),
        extensions=dict(extensions) if extensions else {},
    )
    validate_event(event)
    return event

"""CloudEvents over HTTP: reading a request into events, and writing an event as one.

``parse_http`` picks the content mode from the ``Content-Type`` header, as the
CloudEvents HTTP binding says:

- ``application/cloudevents+json`` (any parameters): structured, one event in the body;
- ``application/cloudevents-batch+json``: batch, a JSON array of structured events;
- anything else, or no ``Content-Type``: binary, attributes in ``ce-*`` headers
  (trimmed, then percent-decoded), ``Content-Type`` as ``datacontenttype`` and the body
  as the data, byte for byte. An empty body means an event without data.

Every event returned has passed ``validate_event``; every failure is an
``EventValidationError`` (or ``PayloadTooLargeError`` over ``max_size``) with a
message a sender can act on. The size of a binary-mode event is its body and its
``ce-*`` headers (names and values) together, as both are stored; JSON that nests more
than ``max_depth`` levels is refused in every mode (``events.depth``).
``to_binary_http`` and ``to_structured_json`` write events back; reading what they
write gives the same event.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, unquote_to_bytes

from triggerfish.errors import EventValidationError, PayloadTooLargeError
from triggerfish.events.depth import MAX_DEPTH, check_depth
from triggerfish.events.model import Event, ExtensionValue, is_json_content_type
from triggerfish.events.structured import parse_batch, parse_structured, to_structured_json
from triggerfish.events.validate import check_attribute_name, quoted, validate_event

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"

_HEADER_PREFIX = "ce-"
_OPTIONAL_ATTRIBUTES = ("subject", "time", "dataschema")
_BINARY_CORE = ("specversion", "id", "source", "type", *_OPTIONAL_ATTRIBUTES)
# The binding percent-encodes space, '"', '%' and everything outside printable ASCII.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')

__all__ = [
    "BATCH_CONTENT_TYPE",
    "STRUCTURED_CONTENT_TYPE",
    "content_mode",
    "parse_http",
    "to_binary_http",
    "to_structured_json",
]


def _normalise(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names in lowercase; the same header given twice with two values is an error."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.strip().lower()
        if key in out and out[key] != value:
            raise EventValidationError(
                f"header {name!r} is given twice with different values; send it once"
            )
        out[key] = value
    return out


def content_mode(content_type: str | None) -> str:
    """``"structured"``, ``"batch"`` or ``"binary"`` for a request's ``Content-Type``."""
    if content_type is None:
        return "binary"
    media = content_type.split(";", 1)[0].strip().lower()
    if media == STRUCTURED_CONTENT_TYPE:
        return "structured"
    if media == BATCH_CONTENT_TYPE:
        return "batch"
    if media.startswith(("application/cloudevents+", "application/cloudevents-batch+")):
        raise EventValidationError(
            f"event format {quoted(media)} is not supported; send "
            f"{STRUCTURED_CONTENT_TYPE}, {BATCH_CONTENT_TYPE} or binary mode",
            field="datacontenttype",
        )
    return "binary"


def percent_decode(value: str, name: str) -> str:
    """A ``ce-*`` header value as the binding says: trimmed, then percent-decoded as UTF-8."""
    text = value.strip(" \t")
    if "%" not in text:
        return text
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventValidationError(
            f"header 'ce-{name}' percent-decodes to bytes that are not valid UTF-8 "
            f"(byte {exc.start}); percent-encode the UTF-8 bytes of each character",
            field=name,
        ) from exc


def percent_encode(value: str) -> str:
    """A value ready for a ``ce-*`` header: the binding's percent-encoding of UTF-8."""
    return quote(value, safe=_HEADER_SAFE)


def _parse_binary(
    headers: dict[str, str], body: bytes, *, max_size: int | None, max_depth: int
) -> Event:
    attributes: dict[str, str] = {}
    header_bytes = 0
    for key, raw in headers.items():
        if not key.startswith(_HEADER_PREFIX):
            continue
        header_bytes += len(key) + len(raw)
        name = key[len(_HEADER_PREFIX) :]
        check_attribute_name(name)
        if name == "data":
            raise EventValidationError(
                "header 'ce-data' is not allowed: in binary mode the request body is the data",
                field="data",
            )
        attributes[name] = percent_decode(raw, name)
    if max_size is not None and len(body) + header_bytes > max_size:
        raise event_too_large(max_size, len(body), header_bytes)
    content_type = (headers.get("content-type") or "").strip() or None
    if content_type is not None:
        attributes.pop("datacontenttype", None)
    else:
        # Content-Type is the binding's place for it; a ce- header is kept only as a fallback.
        content_type = attributes.pop("datacontenttype", None)
    if not attributes:
        raise EventValidationError(
            f"the request carries no CloudEvent: send its attributes as ce-* headers "
            f"(binary mode) or the event as Content-Type {STRUCTURED_CONTENT_TYPE}",
            field="specversion",
        )
    missing = [n for n in ("specversion", "id", "source", "type") if n not in attributes]
    if missing:
        raise EventValidationError(
            f"attribute {missing[0]!r} is required: a binary-mode request must carry the header "
            f"'ce-{missing[0]}' (or send the event as {STRUCTURED_CONTENT_TYPE})",
            field=missing[0],
        )
    if body and is_json_content_type(content_type):
        check_depth(body, max_depth)
    core = {name: attributes.pop(name, None) for name in _BINARY_CORE}
    extensions: dict[str, ExtensionValue] = dict(attributes)
    event = Event(
        specversion=core["specversion"] or "",
        id=core["id"] or "",
        source=core["source"] or "",
        type=core["type"] or "",
        subject=core["subject"],
        time=core["time"],
        dataschema=core["dataschema"],
        datacontenttype=content_type,
        data=body if body else None,
        extensions=extensions,
    )
    validate_event(event)
    return event


def body_too_large(max_size: int, size: int | None = None) -> PayloadTooLargeError:
    """The error for an ingest body over ``max_size`` bytes (``size`` when known)."""
    what = f"is {size} bytes, over" if size is not None else "is over"
    return PayloadTooLargeError(
        f"the request body {what} the limit of {max_size} bytes; send a smaller event "
        "(put large payloads in a bucket and send a reference)",
        field="data",
    )


def event_too_large(max_size: int, body: int, headers: int) -> PayloadTooLargeError:
    """The error for a binary-mode event whose body and ``ce-*`` headers together
    are over ``max_size`` bytes."""
    return PayloadTooLargeError(
        f"the event is {body + headers} bytes ({body} of body and {headers} of ce-* "
        f"headers), over the limit of {max_size} bytes; ce-* headers count toward the "
        "event's size: send a smaller event (put large payloads in a bucket and send a "
        "reference)",
        field="data",
    )


def parse_http(
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_size: int | None = None,
    max_depth: int = MAX_DEPTH,
) -> list[Event]:
    """The events an HTTP request carries: one in binary and structured mode, any in batch."""
    if max_size is not None and len(body) > max_size:
        raise body_too_large(max_size, len(body))
    normalised = _normalise(headers)
    mode = content_mode(normalised.get("content-type"))
    if mode == "structured":
        return [parse_structured(body, max_depth=max_depth)]
    if mode == "batch":
        return parse_batch(body, max_depth=max_depth)
    return [_parse_binary(normalised, body, max_size=max_size, max_depth=max_depth)]


def _header_value(value: ExtensionValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return percent_encode(str(value))


def to_binary_http(event: Event) -> tuple[dict[str, str], bytes]:
    """Headers and body that send the event in binary mode.

    Extension values travel as their canonical strings (``true``, ``42``); a receiver
    gets them back as strings, as binary mode cannot carry their type.
    """
    headers = {
        "ce-specversion": percent_encode(event.specversion),
        "ce-id": percent_encode(event.id),
        "ce-source": percent_encode(event.source),
        "ce-type": percent_encode(event.type),
    }
    for name in _OPTIONAL_ATTRIBUTES:
        value = getattr(event, name)
        if value is not None:
            headers[_HEADER_PREFIX + name] = percent_encode(value)
    for name, value in event.extensions.items():
        headers[_HEADER_PREFIX + name] = _header_value(value)
    if event.datacontenttype is not None:
        headers["content-type"] = event.datacontenttype
    return headers, event.data if event.data is not None else b""

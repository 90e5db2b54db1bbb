"""The rules of CloudEvents 1.0 that every accepted event must keep.

``validate_event`` checks an ``Event`` against the specification and raises
``EventValidationError`` whose ``field`` is the attribute at fault and whose message
names the attribute, the rule it breaks and how to fix it. It returns nothing and
never changes the event: what passes is stored exactly as it arrived.

The checks are the ones the specification makes with MUST, plus one of its SHOULDs
that Triggerfish enforces so names fit everywhere they travel (HTTP headers, broker
message properties): attribute names are at most ``MAX_ATTRIBUTE_NAME_LENGTH`` long.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from triggerfish.errors import EventValidationError
from triggerfish.events.model import CORE_ATTRIBUTES, Event

SPEC_VERSION = "1.0"
MAX_ATTRIBUTE_NAME_LENGTH = 20

#: Names a structured event uses for its payload; no attribute may take them.
RESERVED_NAMES = frozenset({"data", "data_base64"})

#: The CloudEvents Integer type is a signed 32-bit number.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

_NAME = re.compile(r"[a-z0-9]+")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# RFC 3986: unreserved, gen-delims, sub-delims, and '%' (checked for two hex digits apart).
_URI_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)
_HEX = frozenset("0123456789abcdefABCDEF")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}[ \t]*(;.*)?", re.DOTALL)


def quoted(value: Any) -> str:
    """A value as it appears in an error message: strings in double quotes, cut short."""
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_attribute_name(name: str) -> None:
    """Raise unless ``name`` may name a context attribute or an extension."""
    if not _NAME.fullmatch(name):
        raise EventValidationError(
            f"attribute name {quoted(name)} must use only lowercase letters a-z and digits 0-9 "
            "(no '-', '_' or capitals); rename the attribute",
            field=name,
        )
    if len(name) > MAX_ATTRIBUTE_NAME_LENGTH:
        raise EventValidationError(
            f"attribute name {quoted(name)} is {len(name)} characters long, over the limit of "
            f"{MAX_ATTRIBUTE_NAME_LENGTH}; choose a shorter name",
            field=name,
        )


def check_rfc3339(value: str) -> bool:
    """True when ``value`` is an RFC 3339 timestamp naming a real date and time."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if second == 60:  # a leap second is valid in RFC 3339
        second = 59
    if match.group(9) is not None and (int(match.group(9)) > 23 or int(match.group(10)) > 59):
        return False
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def uri_reference_problem(value: str) -> str | None:
    """Why ``value`` is not an RFC 3986 URI-reference, or ``None`` when it is one."""
    for position, char in enumerate(value):
        if char not in _URI_CHARS:
            return f"character {char!r} at position {position} is not allowed; percent-encode it"
        if char == "%" and not (
            position + 2 < len(value)
            and value[position + 1] in _HEX
            and value[position + 2] in _HEX
        ):
            return f"'%' at position {position} must start an escape such as %20"
    head = re.split(r"[/?#]", value, maxsplit=1)[0]
    if ":" in head and not _SCHEME.fullmatch(head.split(":", 1)[0]):
        return (
            f"{quoted(head.split(':', 1)[0])} before ':' is not a valid scheme; "
            "a scheme starts with a letter"
        )
    return None


def _require_string(event: Event, name: str) -> str | None:
    value = getattr(event, name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventValidationError(
            f"attribute {name!r} must be a string (got {type(value).__name__} {quoted(value)})",
            field=name,
        )
    if not value:
        raise EventValidationError(
            f"attribute {name!r} must not be empty; give it a value or leave it out",
            field=name,
        )
    _check_unicode(name, value)
    return value


def _check_unicode(name: str, value: str) -> None:
    """Strings travel as UTF-8; a lone surrogate (from a bad decode) cannot."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EventValidationError(
            f"attribute {name!r} holds a character that is not valid Unicode text "
            f"(U+{ord(value[exc.start]):04X} at position {exc.start})",
            field=name,
        ) from exc


def _check_required(event: Event) -> None:
    for name in ("specversion", "id", "source", "type"):
        value = getattr(event, name)
        if value is None or value == "":
            raise EventValidationError(
                f"attribute {name!r} is required and must be a non-empty string", field=name
            )
        _require_string(event, name)
    if event.specversion != SPEC_VERSION:
        raise EventValidationError(
            f"attribute 'specversion' must be {quoted(SPEC_VERSION)} "
            f"(got {quoted(event.specversion)}); Triggerfish accepts CloudEvents 1.0 only",
            field="specversion",
        )
    problem = uri_reference_problem(event.source)
    if problem is not None:
        raise EventValidationError(
            f"attribute 'source' must be a URI-reference such as \"/orders\" or "
            f'"https://shop.example/orders" (got {quoted(event.source)}): {problem}',
            field="source",
        )


def _check_optional(event: Event) -> None:
    _require_string(event, "subject")
    time = _require_string(event, "time")
    if time is not None and not check_rfc3339(time):
        raise EventValidationError(
            f"attribute 'time' must be an RFC 3339 timestamp such as "
            f'"2024-05-01T12:30:00Z" (got {quoted(time)})',
            field="time",
        )
    content_type = _require_string(event, "datacontenttype")
    if content_type is not None and not _MEDIA_TYPE.fullmatch(content_type.strip()):
        raise EventValidationError(
            f"attribute 'datacontenttype' must be a media type such as \"application/json\" "
            f"(got {quoted(content_type)})",
            field="datacontenttype",
        )
    schema = _require_string(event, "dataschema")
    if schema is not None:
        problem = uri_reference_problem(schema)
        if problem is None and (":" not in schema or schema.startswith(("/", "?", "#"))):
            problem = "it has no scheme; give an absolute URI such as https://..."
        if problem is not None:
            raise EventValidationError(
                f"attribute 'dataschema' must be an absolute URI (got {quoted(schema)}): {problem}",
                field="dataschema",
            )
    if event.data is not None and not isinstance(event.data, bytes):
        raise EventValidationError(
            f"data must be bytes (got {type(event.data).__name__})", field="data"
        )


def check_extension(name: str, value: Any) -> None:
    """Raise unless ``name``/``value`` may be an extension attribute."""
    if not isinstance(name, str):
        raise EventValidationError(f"extension name {quoted(name)} must be a string")
    check_attribute_name(name)
    if name in CORE_ATTRIBUTES or name in RESERVED_NAMES:
        raise EventValidationError(
            f"extension {name!r} takes the name of a core attribute of CloudEvents; "
            "rename the extension",
            field=name,
        )
    if isinstance(value, str):
        _check_unicode(name, value)
        return
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise EventValidationError(
                f"extension {name!r} is an integer outside the signed 32-bit range of "
                f"CloudEvents (got {value}); send it as a string",
                field=name,
            )
        return
    kind = {dict: "an object", list: "an array", float: "a decimal number"}.get(
        type(value), f"of type {type(value).__name__}"
    )
    raise EventValidationError(
        f"extension {name!r} must be a string, an integer or a boolean (got {kind}); "
        "send structured values as a JSON string or inside data",
        field=name,
    )


def validate_event(event: Event) -> None:
    """Raise ``EventValidationError`` for the first rule of CloudEvents 1.0 the event breaks."""
    _check_required(event)
    _check_optional(event)
    if not isinstance(event.extensions, dict):
        raise EventValidationError("extensions must be a dict of name to value")
    for name, value in event.extensions.items():
        check_extension(name, value)

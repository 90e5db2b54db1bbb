"""The Event: a CloudEvents 1.0 envelope, as Triggerfish stores and delivers it.

``data`` is kept as the exact bytes that were received (binary mode body, or the
serialised ``data`` member of a structured event, or the decoded ``data_base64``), so
an event goes through the bus byte for byte. ``to_dict`` gives the JSON structured
form that handlers receive: JSON data parsed, text data as a string, anything else
as ``data_base64``.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import orjson

from triggerfish.events.depth import deeper_than

ExtensionValue = str | int | bool

#: Attributes defined by the CloudEvents 1.0 core specification.
CORE_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema"}
)
#: JSON data nested deeper than this cannot be written back by every JSON writer of the
#: server (orjson stops at 254 levels; pydantic, with the API's envelope, at 255).
WRITABLE_DEPTH = 200


def is_json_content_type(content_type: str | None) -> bool:
    """True for an absent content type (JSON by default) and for ``*/json``, ``*+json``."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def is_text_content_type(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in {"application/xml", "application/yaml"}


class Event(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    source: str
    type: str
    specversion: str = "1.0"
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: bytes | None = None
    extensions: dict[str, ExtensionValue] = {}

    def data_value(self) -> Any:
        """The data as a handler sees it: parsed JSON, text, or ``None``.

        Raises ``ValueError`` for binary data, which only has a base64 form.
        """
        if self.data is None:
            return None
        if is_json_content_type(self.datacontenttype):
            return msgspec.json.decode(self.data)
        if is_text_content_type(self.datacontenttype):
            return self.data.decode("utf-8")
        raise ValueError("binary data has no JSON value")

    def attributes(self) -> dict[str, Any]:
        """Context attributes and extensions, without the data."""
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        for name in ("subject", "time", "datacontenttype", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        return out

    def to_dict(self, *, strict: bool = False) -> dict[str, Any]:
        """The JSON structured form (``application/cloudevents+json``) as a dict.

        JSON data that does not parse is given as ``data_base64``, its bytes untouched;
        so is data nested more than ``WRITABLE_DEPTH`` levels deep, unless ``strict``
        (a delivery, whose handler expects the data as JSON: data too deep to write
        makes its attempt fail)."""
        out = self.attributes()
        if self.data is not None:
            if (
                not strict
                and is_json_content_type(self.datacontenttype)
                and deeper_than(self.data, WRITABLE_DEPTH)
            ):
                out["data_base64"] = base64.b64encode(self.data).decode("ascii")
                return out
            try:
                out["data"] = self.data_value()
            except ValueError:
                out["data_base64"] = base64.b64encode(self.data).decode("ascii")
            except msgspec.DecodeError:
                # Declared JSON but not valid JSON: deliver the bytes untouched.
                out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        return out

    def with_extensions(self, **extensions: ExtensionValue) -> Event:
        return msgspec.structs.replace(self, extensions={**self.extensions, **extensions})


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Event)


def json_extension(event: Event, name: str) -> Any:
    """The value of the extension ``name`` that holds a JSON text (CloudEvents
    extensions are strings, so a list or an object travels as one); None when the event
    has no such extension or its text is not JSON."""
    text = event.extensions.get(name)
    if not isinstance(text, str):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def encode_event(event: Event) -> bytes:
    """Compact binary form used on the bus and in the store."""
    return _encoder.encode(event)


def decode_event(blob: bytes) -> Event:
    return _decoder.decode(blob)

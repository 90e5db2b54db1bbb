"""What a sink sends for an event, and where the relay finds it on the bus.

An event aimed at a broker waits on the internal topic ``_sink.<broker>`` with its
address in the ``sinkaddress`` extension; that extension never leaves Triggerfish.

``format: raw`` (the default) sends the event's data as the body and its CloudEvents
attributes as headers where the broker has them (binary content mode); ``format:
cloudevent`` sends the JSON structured form (``application/cloudevents+json``).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from triggerfish.events.model import Event
from triggerfish.events.structured import to_structured_json

SINK_ADDRESS = "sinkaddress"
STRUCTURED = "application/cloudevents+json"


def sink_topic(broker: str) -> str:
    return f"_sink.{broker}"


def without_address(event: Event) -> Event:
    if SINK_ADDRESS not in event.extensions:
        return event
    extensions = {k: v for k, v in event.extensions.items() if k != SINK_ADDRESS}
    return msgspec.structs.replace(event, extensions=extensions)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message: ``attributes`` are the CloudEvents attributes and extensions (as
    text, without ``datacontenttype``), empty in structured mode."""

    body: bytes
    content_type: str | None
    attributes: dict[str, str]


def outgoing(event: Event, *, structured: bool) -> Outgoing:
    event = without_address(event)
    if structured:
        return Outgoing(to_structured_json(event), STRUCTURED, {})
    attributes = {}
    for name, value in event.attributes().items():
        if name == "datacontenttype":
            continue
        attributes[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return Outgoing(event.data or b"", event.datacontenttype, attributes)

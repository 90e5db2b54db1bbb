"""One broker message into one CloudEvent.

What every source kind does the same way:

- ``data`` is the message's payload. A payload that parses as JSON is delivered as JSON
  (``application/json``); otherwise it keeps the content type the broker gave it, or is
  ``text/plain; charset=utf-8`` when it is UTF-8 text, else ``application/octet-stream``
  (handlers then get ``data_base64``). An empty payload is an event without data.
- ``subject`` is where the message was published: the stream, subject, routing key,
  MQTT topic, channel or table.
- Extensions (CloudEvents names: lowercase letters and digits, at most 20 characters):
  ``brokermsgid`` (the broker's id of the message), ``deliverycount`` (how many times
  the broker delivered it, when it says), ``brokerheaders`` (the message's headers or
  properties, as a JSON object in a string), and a few per kind (``amqpexchange``,
  ``mqttqos`` ...) listed in docs/brokers.md.
- With ``format: cloudevent`` the payload must be a CloudEvent in the JSON structured
  form, which becomes the event as it is (the broker's extensions are added). A payload
  that is not one cannot become an event: the source *drops* it (see ``DroppedMessage``).

A broker id that stays the same across redeliveries (a stream entry id, a stream
sequence, an outbox row id) becomes the event's ``id``, so a message delivered again
after a crash is a duplicate that the bus recognises and stores once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec
import orjson

from triggerfish.errors import EventValidationError
from triggerfish.events.create import new_event_id, now_rfc3339
from triggerfish.events.model import Event, ExtensionValue, is_json_content_type
from triggerfish.events.structured import parse_structured
from triggerfish.events.validate import validate_event

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"


class DroppedMessage(EventValidationError):
    """A message that cannot become an event; the source acknowledges it without an
    event (AMQP rejects it to the queue's dead-letter exchange) and logs why."""


@dataclass(slots=True)
class Message:
    """What a broker handed over, in the terms every kind shares."""

    payload: bytes
    subject: str
    stable_id: str | None = None  # an id the broker keeps across redeliveries
    message_id: str | None = None  # the broker's or publisher's id, shown as brokermsgid
    headers: Mapping[str, str] | None = None
    content_type: str | None = None
    delivery_count: int | None = None
    extensions: dict[str, ExtensionValue] = field(default_factory=dict)
    event_type: str | None = None  # overrides the source's type (outbox rows may say)


def data_of(payload: bytes, content_type: str | None) -> tuple[bytes | None, str | None]:
    """The event's ``data`` and ``datacontenttype`` for a payload."""
    if not payload:
        return None, None
    if is_json_content_type(content_type):
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
        else:
            return payload, JSON
        content_type = None
    if content_type:
        return payload, content_type
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload, BINARY
    return payload, TEXT


class Converter:
    def __init__(self, *, source: str, event_type: str, structured: bool = False) -> None:
        self._source = source
        self._type = event_type
        self._structured = structured

    def event(self, message: Message) -> Event:
        """The event for ``message``; ``DroppedMessage`` when it cannot be one."""
        extensions = dict(message.extensions)
        if message.message_id:
            extensions["brokermsgid"] = message.message_id
        if message.delivery_count is not None:
            extensions["deliverycount"] = message.delivery_count
        if message.headers:
            extensions["brokerheaders"] = orjson.dumps(dict(message.headers)).decode()
        try:
            if self._structured:
                event = parse_structured(message.payload)
                event = msgspec.structs.replace(
                    event, extensions={**extensions, **event.extensions}
                )
            else:
                data, content_type = data_of(message.payload, message.content_type)
                event = Event(
                    id=message.stable_id or new_event_id(),
                    source=self._source,
                    type=message.event_type or self._type,
                    subject=message.subject or None,
                    time=now_rfc3339(),
                    datacontenttype=content_type,
                    data=data,
                    extensions=extensions,
                )
            validate_event(event)
        except EventValidationError as exc:
            raise DroppedMessage(str(exc)) from exc
        return event

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
from triggerfish.events.validate import check_extension, validate_event

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
    """Turns a source's messages into events.

    Every event is checked against CloudEvents 1.0 (``validate_event``), but the raw
    form checks cheaply what it can: ``source`` and ``type`` are the same for every
    message and are checked once here, ``time`` and the extension names are made by
    Triggerfish, so a message whose own parts (id, subject, content type, extension
    values) are plain ASCII strings, booleans or 32-bit integers needs no more; any
    other goes through the full check, which names what is wrong.
    """

    def __init__(self, *, source: str, event_type: str, structured: bool = False) -> None:
        self._source = source
        self._type = event_type
        self._structured = structured
        self._names: set[str] = set()  # extension names that passed the name rules
        try:
            validate_event(Event(id="0", source=source, type=event_type))
        except EventValidationError:
            self._constant_ok = False  # every message gets the full check, and is dropped
        else:
            self._constant_ok = True

    def event(self, message: Message, *, time: str | None = None) -> Event:
        """The event for ``message``; ``DroppedMessage`` when it cannot be one. ``time``:
        the events' time (a batch shares one), else now."""
        extensions = dict(message.extensions)
        if message.message_id:
            extensions["brokermsgid"] = message.message_id
        if message.delivery_count is not None:
            extensions["deliverycount"] = message.delivery_count
        try:
            if message.headers:
                extensions["brokerheaders"] = orjson.dumps(dict(message.headers)).decode()
            if self._structured:
                event = parse_structured(message.payload)
                event = msgspec.structs.replace(
                    event, extensions={**extensions, **event.extensions}
                )
                validate_event(event)
                return event
            data, content_type = data_of(message.payload, message.content_type)
            event = Event(
                id=message.stable_id or new_event_id(),
                source=self._source,
                type=message.event_type or self._type,
                subject=message.subject or None,
                time=time or now_rfc3339(),
                datacontenttype=content_type,
                data=data,
                extensions=extensions,
            )
            if not (self._constant_ok and _plainly_valid(event, message.event_type, self._names)):
                validate_event(event)
        except (EventValidationError, orjson.JSONEncodeError) as exc:
            raise DroppedMessage(str(exc)) from exc
        return event


_OWN_CONTENT_TYPES = frozenset({None, JSON, TEXT, BINARY})
_INT32 = range(-(2**31), 2**31)


def _plain(value: str | None) -> bool:
    return value is None or (value != "" and value.isascii())


def _plainly_valid(event: Event, event_type: str | None, names: set[str]) -> bool:
    """True when the parts of ``event`` that come from the message certainly keep the
    rules (the others were checked once); False means: run the full check. ``names``:
    extension names already found valid, added to as more are."""
    if not (_plain(event.id) and _plain(event.subject) and _plain(event_type)):
        return False
    if event.datacontenttype not in _OWN_CONTENT_TYPES:
        return False
    for name, value in event.extensions.items():
        if name not in names:
            try:
                check_extension(name, "")
            except EventValidationError:
                return False
            names.add(name)
        if isinstance(value, str):
            if not value.isascii():
                return False
        elif not (isinstance(value, bool) or (isinstance(value, int) and value in _INT32)):
            return False
    return True

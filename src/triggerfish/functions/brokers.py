"""Named broker connections for output (``brokers:`` in the manifest), targets and
destinations.

A *target* says where an emitted event or a destination record goes: an internal topic
(``orders``), or ``<broker>:<address>`` (``alerts-mq:sensors.hot``), where ``<broker>``
names an entry of ``brokers:`` and the address is the stream, subject, routing key,
MQTT topic, channel or table there. Topic names cannot hold ``:``, so the two never
mix. ``parse_target`` reads one; nothing here does I/O.

A broker's ``url`` may hold ``${NAME}``, taken from the server's environment when the
broker is saved (so the check that the variable is set happens on the server, at
deploy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from triggerfish.bus.names import TOPIC_PATTERN, TOPIC_RULE
from triggerfish.errors import ValidationError
from triggerfish.functions.fields import NAME_RE, NAME_RULE, PLAIN, StrictModel

BrokerKindName = Literal[
    "redis", "redis-pubsub", "nats", "jetstream", "amqp", "mqtt", "postgres", "outbox"
]

#: URL schemes each kind accepts.
SCHEMES: dict[str, tuple[str, ...]] = {
    "redis": ("redis", "rediss"),
    "redis-pubsub": ("redis", "rediss"),
    "nats": ("nats", "tls"),
    "jetstream": ("nats", "tls"),
    "amqp": ("amqp", "amqps"),
    "mqtt": ("mqtt", "mqtts"),
    "postgres": ("postgresql", "postgres"),
    "outbox": ("postgresql", "postgres"),
}

#: The options each kind takes besides kind, url, format, backoff and max_backoff.
KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "redis": ("maxlen", "approximate", "field"),
    "redis-pubsub": (),
    "nats": (),
    "jetstream": ("timeout",),
    "amqp": ("exchange", "exchange_type", "declare", "persistent", "mandatory"),
    "mqtt": ("qos", "retain", "protocol", "client_id"),
    "postgres": (),
    "outbox": ("payload_column", "headers_column", "id_column"),
}
COMMON_OPTIONS = ("kind", "url", "format", "backoff", "max_backoff")

TARGET_RULE = (
    f"an internal topic ({TOPIC_RULE}) or '<broker>:<address>' naming an entry of 'brokers:'"
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


class BrokerConfig(StrictModel):
    """One named connection that events can be sent to."""

    kind: BrokerKindName = Field(description="one of " + ", ".join(SCHEMES))
    url: str = Field(min_length=1, description="the broker's url, ${VAR} for secrets")
    format: Literal["raw", "cloudevent"] = Field(
        default="raw",
        description='"raw" (data as the body, attributes as headers) or "cloudevent" (JSON)',
    )
    backoff: float = Field(
        default=0.5, gt=0, le=60, description="seconds before the first retry, above 0, at most 60"
    )
    max_backoff: float = Field(
        default=30.0, gt=0, le=3600, description="longest wait between retries, in seconds"
    )
    # redis (streams)
    maxlen: int | None = Field(default=None, ge=1, description="an integer above 0")
    approximate: bool = Field(default=True, description="true to trim with MAXLEN ~")
    field: str = Field(default="data", min_length=1, description="the entry field of the body")
    # jetstream
    timeout: float = Field(default=5.0, gt=0, le=300, description="seconds to wait for the ack")
    # amqp
    exchange: str = Field(default="", description='an exchange name ("" is the default one)')
    exchange_type: Literal["direct", "topic", "fanout", "headers"] = Field(
        default="topic", description="direct, topic, fanout or headers"
    )
    declare: bool = Field(default=False, description="true to declare the exchange (durable)")
    persistent: bool = Field(default=True, description="true for persistent delivery")
    mandatory: bool = Field(
        default=True, description="true to retry messages no queue is bound to take"
    )
    # mqtt
    qos: Literal[0, 1, 2] = Field(default=1, description="0, 1 or 2")
    retain: bool = Field(default=False, description="true to publish retained messages")
    protocol: Literal["3.1.1", "5"] = Field(default="5", description='"3.1.1" or "5"')
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    # outbox
    payload_column: str = Field(default="payload", description="a column name")
    headers_column: str | None = Field(default=None, description="a column name")
    id_column: str | None = Field(default=None, description="a unique column for event ids")

    @model_validator(mode="after")
    def _checks(self) -> BrokerConfig:
        allowed = set(COMMON_OPTIONS) | set(KIND_OPTIONS[self.kind])
        # A value equal to its default is no choice (a stored definition dumps them all).
        foreign = [
            name
            for name in self.model_fields_set
            if name not in allowed and getattr(self, name) != type(self).model_fields[name].default
        ]
        if foreign:
            takes = ", ".join(KIND_OPTIONS[self.kind]) or "no other option"
            raise PydanticCustomError(
                PLAIN,
                "'{option}' is not an option of {kind} brokers; besides kind, url, format,"
                " backoff and max_backoff they take: {takes}",
                {"option": sorted(foreign)[0], "kind": self.kind, "takes": takes},
            )
        scheme = urlsplit(self.url).scheme if "${" not in self.url.split("://")[0] else None
        if scheme is not None and scheme not in SCHEMES[self.kind]:
            wanted = " or ".join(f"{s}://" for s in SCHEMES[self.kind])
            raise PydanticCustomError(
                PLAIN,
                "url: {kind} brokers need a url starting with {wanted}",
                {"kind": self.kind, "wanted": wanted},
            )
        for column in ("payload_column", "headers_column", "id_column"):
            value = getattr(self, column)
            if value is not None and not _IDENTIFIER.match(value):
                raise PydanticCustomError(
                    PLAIN,
                    "{column}: expected a column name of letters, digits and '_', got {value!r}",
                    {"column": column, "value": value},
                )
        return self


@dataclass(frozen=True, slots=True)
class Target:
    """Where an event goes: ``broker`` is None for an internal topic (``address``)."""

    broker: str | None
    address: str

    def __str__(self) -> str:
        return self.address if self.broker is None else f"{self.broker}:{self.address}"


def parse_target(text: str) -> Target:
    """Read a target; ValidationError naming what is wrong with it."""
    if not isinstance(text, str) or not text:
        raise ValidationError(f"expected {TARGET_RULE}, got {text!r}", field="target")
    if ":" not in text:
        if not TOPIC_PATTERN.match(text) and not text.startswith("_"):
            raise ValidationError(
                f"invalid target {text!r}: expected {TARGET_RULE}", field="target"
            )
        return Target(None, text)
    broker, address = text.split(":", 1)
    if not NAME_RE.match(broker):
        raise ValidationError(
            f"invalid target {text!r}: the broker name before ':' must be {NAME_RULE}",
            field="target",
        )
    if not address or len(address) > 1024 or any(ord(c) < 32 for c in address):
        raise ValidationError(
            f"invalid target {text!r}: give the address after '{broker}:' (a stream, subject,"
            " routing key, MQTT topic, channel or table; at most 1024 printable characters)",
            field="target",
        )
    return Target(broker, address)


class Destinations(StrictModel):
    """Where a function's invocation records go after asynchronous invocations and
    trigger deliveries."""

    on_success: str | None = Field(default=None, description=TARGET_RULE)
    on_failure: str | None = Field(default=None, description=TARGET_RULE)

    @model_validator(mode="after")
    def _targets(self) -> Destinations:
        for name in ("on_success", "on_failure"):
            value = getattr(self, name)
            if value is not None:
                try:
                    parse_target(value)
                except ValidationError as exc:
                    raise PydanticCustomError(
                        PLAIN, "{name}: {message}", {"name": name, "message": str(exc)}
                    ) from None
        return self

    def targets(self) -> list[Target]:
        return [parse_target(t) for t in (self.on_success, self.on_failure) if t is not None]

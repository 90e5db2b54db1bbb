"""Flow control of a trigger in the manifest: ``concurrency``, ``rate``, ``debounce`` and
``priority``, each reading a value of the event through a key path.

A key path names one value of the CloudEvent: ``data`` or ``data.a.b`` (a field of the
JSON data, nested by dots), or an attribute or extension name (``subject``, ``source``,
``type``, ``partitionkey``...). ``read_path`` reads it; an event without that value
has the key ``None`` (one shared group of its own).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from triggerfish.events.model import Event
from triggerfish.functions.fields import EXPECTED, StrictModel

KEY_PATH_RULE = (
    'a key path: "data" or "data.<field>[.<field>...]" (fields of letters, digits, "_" or'
    ' "-"), or an attribute or extension name such as "subject", "source" or "partitionkey"'
)
_DATA_PATH_RE = re.compile(r"^data(\.[A-Za-z0-9_-]+)*$")
_ATTRIBUTE_RE = re.compile(r"^[a-z0-9]{1,20}$")
_PERIOD_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_PERIOD_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
PERIOD_RULE = 'a period above zero: seconds as a number, or with ms, s, m or h ("500ms", "1s")'
MAX_PERIOD = 86400.0


def check_key_path(value: str) -> str:
    if not (_DATA_PATH_RE.match(value) or _ATTRIBUTE_RE.match(value)):
        raise PydanticCustomError(EXPECTED, f"expected {KEY_PATH_RULE}")
    return value


def _parse_period(value: Any) -> Any:
    """``1``, ``0.5``, ``"500ms"``, ``"5s"``, ``"1m"`` as seconds (a float)."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _PERIOD_RE.match(value)):
        seconds = float(match.group(1)) * _PERIOD_UNITS[match.group(2)]
    if seconds is None or not 0 < seconds <= MAX_PERIOD:
        raise PydanticCustomError(EXPECTED, f"expected {PERIOD_RULE}, at most a day")
    return seconds


KeyPath = Annotated[str, AfterValidator(check_key_path)]
Period = Annotated[float, BeforeValidator(_parse_period)]


def read_path(event: Event, path: str, data: Any = None) -> Any:
    """The value ``path`` names in ``event`` (None when absent). ``data``: the event's
    data already decoded, so several paths decode it once."""
    if path == "data" or path.startswith("data."):
        value = event_data(event) if data is None else data
        for field in path.split(".")[1:]:
            if not isinstance(value, dict):
                return None
            value = value.get(field)
        return value
    if path in ("id", "source", "type", "specversion", "subject", "time"):
        return getattr(event, path)
    if path in ("datacontenttype", "dataschema"):
        return getattr(event, path)
    return event.extensions.get(path)


def event_data(event: Event) -> Any:
    """The event's data as JSON, or None when it has none or is not JSON."""
    try:
        return event.data_value()
    except ValueError:
        return None


class ConcurrencyOptions(StrictModel):
    """At most ``limit`` invocations in flight per value of ``key`` (of the whole trigger
    without a key)."""

    limit: int = Field(ge=1, le=100000, description="an integer from 1 to 100000")
    key: KeyPath | None = Field(default=None, description=KEY_PATH_RULE)


class RateOptions(StrictModel):
    """At most ``limit`` invocations started in any ``period`` per value of ``key``."""

    limit: int = Field(ge=1, le=1000000, description="an integer from 1 to 1000000")
    period: Period = Field(default=1.0, description=PERIOD_RULE)
    key: KeyPath | None = Field(default=None, description=KEY_PATH_RULE)


class DebounceOptions(StrictModel):
    """Only the last event of a burst per value of ``key`` runs; a burst ends once no
    event of that key came for ``period``."""

    period: Period = Field(description=PERIOD_RULE)
    key: KeyPath | None = Field(default=None, description=KEY_PATH_RULE)


def _priority_path(value: Any) -> Any:
    """``priority: data.priority`` is short for ``priority: {key: data.priority}``."""
    return {"key": value} if isinstance(value, str) else value


class PriorityOptions(StrictModel):
    """Of the events waiting for a free slot, those with the higher number run first; an
    event whose value is absent or not a number has ``default``."""

    key: KeyPath = Field(description=KEY_PATH_RULE)
    default: float = Field(default=0, description="a number: the priority of an event without one")


Priority = Annotated[PriorityOptions | None, BeforeValidator(_priority_path)]

"""The keys of idempotency records: from an event (a dotted path, a function of it,
or its identity) or from a function's arguments, scoped by the decorated function's
name and kept within the store's length."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from triggerfish.errors import ValidationError

KeySpec = str | Callable[..., Any] | None
MAX_KEY_LENGTH = 256


def key_at(payload: Any, path: str) -> Any:
    """The value at the dotted ``path`` of ``payload`` (names of objects, indexes of
    lists); ``ValidationError`` naming the step that is missing."""
    value = payload
    for step in path.split("."):
        if isinstance(value, Mapping) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise ValidationError(
                f"the idempotency key {path!r} is not in the event: it has no {step!r}; "
                "give a dotted path of names (and list indexes) that every event has, "
                "or key=a function of the event",
                field="key",
            )
    return value


def key_text(value: Any, *, name: str) -> str:
    """The text of a key's value; ``ValidationError`` for a missing (null) value."""
    if value is None:
        raise ValidationError(f"the idempotency key {name!r} of this event is null", field="key")
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise ValidationError(
            f"the idempotency key {name!r} is a {type(value).__name__}, not text or JSON",
            field="key",
        ) from None


def event_key(event: Any) -> str:
    """The default key of an event: a CloudEvent's source and id (which identify it),
    or a digest of any other payload."""
    if (
        isinstance(event, Mapping)
        and "specversion" in event
        and isinstance(event.get("id"), str)
        and isinstance(event.get("source"), str)
    ):
        return f"{event['source']} {event['id']}"
    return "sha256:" + digest(key_text(event, name="payload"))


def scoped(scope: str, key: str) -> str:
    """``scope#key``, with a digest of the key when the whole would be too long."""
    full = f"{scope}#{key}"
    if len(full) <= MAX_KEY_LENGTH:
        return full
    return f"{scope[:150]}#sha256:{digest(key)}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_of_event(key: KeySpec) -> Callable[..., str]:
    if key is None:
        return lambda event, *_rest, **_kw: event_key(event)
    if isinstance(key, str):
        path = key
        return lambda event, *_rest, **_kw: key_text(key_at(event, path), name=path)
    if callable(key):
        pick = key
        return lambda event, *_rest, **_kw: key_text(pick(event), name="key(event)")
    raise ValidationError(
        f"key must be a dotted path, a function of the event or None, not {key!r}", field="key"
    )


def key_of_arguments(key: KeySpec) -> Callable[..., str]:
    if key is None:
        return lambda *args, **kwargs: (
            "sha256:" + digest(key_text([list(args), kwargs], name="arguments"))
        )
    if isinstance(key, str):
        path = key
        return lambda first, *_rest, **_kw: key_text(key_at(first, path), name=path)
    if callable(key):
        pick = key
        return lambda *args, **kwargs: key_text(pick(*args, **kwargs), name="key(...)")
    raise ValidationError(
        f"key must be a dotted path, a function of the arguments or None, not {key!r}",
        field="key",
    )

"""Publishes the events a handler emitted, linked to the event that caused them.

Each emitted event carries ``correlationid`` (the first event of the chain) and
``causationid`` (the event whose handling emitted it), and the caller's trace context,
so a chain of functions can be followed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import orjson

from triggerfish.bus.base import Bus
from triggerfish.events.create import now_rfc3339
from triggerfish.events.model import Event, ExtensionValue
from triggerfish.ids import new_id
from triggerfish.runtime.base import EmitRequest


def emitted_event(function: str, request: EmitRequest, cause: Event | None) -> Event:
    extensions: dict[str, ExtensionValue] = dict(request.extensions)
    if cause is not None:
        correlation = cause.extensions.get("correlationid", cause.id)
        extensions.setdefault("correlationid", correlation)
        extensions.setdefault("causationid", cause.id)
        for name in ("traceparent", "tracestate"):
            if name in cause.extensions:
                extensions.setdefault(name, cause.extensions[name])
    return Event(
        id=request.id or new_id(),
        source=request.source or f"triggerfish://functions/{function}",
        type=request.type,
        subject=request.subject,
        time=now_rfc3339(),
        datacontenttype="application/json",
        data=orjson.dumps(request.data),
        extensions=extensions,
    )


class Emitter:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(
        self, function: str, requests: Sequence[EmitRequest], cause: Event | None
    ) -> list[Event]:
        if not requests:
            return []
        by_topic: dict[str, list[Event]] = defaultdict(list)
        events = []
        for request in requests:
            event = emitted_event(function, request, cause)
            by_topic[request.topic].append(event)
            events.append(event)
        for topic, batch in by_topic.items():
            await self._bus.publish(topic, batch)
        return events

"""Publishes the events a handler emitted, and its destination records, linked to the
event that caused them.

Each emitted event carries ``correlationid`` (the first event of the chain) and
``causationid`` (the event whose handling emitted it), and the caller's trace context,
so a chain of functions can be followed.

A target is an internal topic or ``<broker>:<address>`` (``functions/brokers.py``). An
event for a broker is published to ``_sink.<broker>`` with its address in the
``sinkaddress`` extension, in the same commit as the other emitted events: the sink
relay sends it on (``sinks/relay.py``). A broker this node does not know fails the
emit with a message that names it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

import orjson

from triggerfish.bus.base import Bus, Delivery
from triggerfish.dispatch import shapes
from triggerfish.dispatch.destinations import (
    FAILURE_TYPE,
    SUCCESS_TYPE,
    DestinationsOf,
    condition_of,
    invocation_record,
)
from triggerfish.dispatch.policy import Subscription
from triggerfish.errors import ValidationError
from triggerfish.events.create import now_rfc3339
from triggerfish.events.model import Event, ExtensionValue
from triggerfish.functions.brokers import parse_target
from triggerfish.ids import new_id
from triggerfish.runtime.base import EmitRequest, FunctionSpec, InvocationResult
from triggerfish.sinks.message import SINK_ADDRESS, sink_topic

log = logging.getLogger("triggerfish.dispatch")

KnownBroker = Callable[[str], bool]


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
    def __init__(
        self,
        bus: Bus,
        *,
        known_broker: KnownBroker | None = None,
        destinations_of: DestinationsOf | None = None,
    ) -> None:
        self._bus = bus
        self._known_broker = known_broker or (lambda _name: False)
        self._destinations_of = destinations_of or (lambda _spec: None)

    def known_broker(self, name: str) -> bool:
        return self._known_broker(name)

    def route(self, target: str, event: Event) -> tuple[str, Event]:
        """The bus topic that ``event`` aimed at ``target`` is published to, and the event
        as published there. ValidationError for a target that is not one, or names a
        broker this node does not have, or is one of Triggerfish's own topics (``_``
        first: ``_invoke.<function>`` would start a function its caller may not invoke)."""
        if target.startswith("_"):
            raise ValidationError(
                f"emit to {target!r}: topics whose name starts with '_' are Triggerfish's "
                "own; emit to a topic of yours, or invoke the function with a key that "
                "may (permissions: invoke)",
                field="topic",
            )
        if ":" not in target:
            return target, event
        try:
            parsed = parse_target(target)
        except ValidationError as exc:
            raise ValidationError(f"emit: {exc}", field="topic") from None
        assert parsed.broker is not None
        if not self._known_broker(parsed.broker):
            raise ValidationError(
                f"emit to {target!r}: no broker named {parsed.broker!r} on this server;"
                " declare it under 'brokers:' in triggerfish.yaml and deploy",
                field="topic",
            )
        return sink_topic(parsed.broker), event.with_extensions(**{SINK_ADDRESS: parsed.address})

    async def publish(
        self, function: str, requests: Sequence[EmitRequest], cause: Event | None
    ) -> list[Event]:
        if not requests:
            return []
        by_topic: dict[str, list[Event]] = defaultdict(list)
        events = []
        for request in requests:
            topic, event = self.route(request.topic, emitted_event(function, request, cause))
            by_topic[topic].append(event)
            events.append(event)
        for topic, batch in by_topic.items():
            await self._bus.publish(topic, batch)
        return events

    # -- destinations ---------------------------------------------------------------

    async def succeeded(
        self,
        spec: FunctionSpec,
        deliveries: Sequence[Delivery],
        result: InvocationResult,
        *,
        payload: bytes,
        attempt: int,
    ) -> list[tuple[str, Event]]:
        """Publish the success record to the function's ``on_success``, if it has one;
        returns it with its destination."""
        destinations = self._destinations_of(spec)
        target = destinations.on_success if destinations else None
        if target is None or not self._reachable(spec, target):
            return []
        record = invocation_record(
            spec, result, condition="Success", payload=payload, attempt=attempt
        )
        request = EmitRequest(topic=target, type=SUCCESS_TYPE, data=record, subject=spec.function)
        events = await self.publish(spec.function, [request], deliveries[0].event)
        return [(target, event) for event in events]

    async def failed(
        self,
        spec: FunctionSpec,
        subscription: Subscription,
        dead: Sequence[tuple[Delivery, str]],
        result: InvocationResult,
    ) -> None:
        """Publish a failure record per given-up event to ``on_failure``, if set."""
        destinations = self._destinations_of(spec)
        target = destinations.on_failure if destinations else None
        if target is None or not self._reachable(spec, target):
            return
        for delivery, reason in dead:
            payload = shapes.payload(
                subscription.payload,
                [delivery],
                batched=False,
                topic=subscription.topic,
                region=spec.region,
            )
            record = invocation_record(
                spec,
                result,
                condition=condition_of(reason),
                payload=payload,
                attempt=delivery.attempt,
            )
            request = EmitRequest(
                topic=target, type=FAILURE_TYPE, data=record, subject=spec.function
            )
            await self.publish(spec.function, [request], delivery.event)

    def _reachable(self, spec: FunctionSpec, target: str) -> bool:
        # Checked at deploy; a broker removed since must not hold events back forever.
        broker = parse_target(target).broker
        if broker is None or self._known_broker(broker):
            return True
        log.error(
            "function %s: destination %r names a broker this server no longer has; "
            "the record is not sent",
            spec.function,
            target,
        )
        return False

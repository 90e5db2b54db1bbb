"""Spans of what the node does with an event or a call, in W3C trace context.

The node builds every span itself, from times it knows: the ingest of a request, the
time an event waited on the bus, the dispatch of a trigger, the invocation (with its
cold start as an event), the handler (from the start and duration the environment
reported) and each emitted event. Environments need no SDK: the handler is given the
``traceparent`` of its own span, and the events it emits carry the ``traceparent`` of
their emit span, a child of the handler's, so a chain of functions is one trace.

This module imports nothing of OpenTelemetry. A ``Tracer`` hands finished spans to a
``SpanSink``; ``observe.otlp`` (loaded only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set) sends them on over OTLP/HTTP. Without a tracer the node's components hold
``None`` and check it once per request or invocation, so tracing off costs nothing else.

Sampling follows the parent: a span whose parent is not sampled (``traceparent``
flags ``00``) is neither recorded nor sampled itself; a trace that starts here is
sampled as ``OTEL_TRACES_SAMPLER`` says (``sampled_share``: all, by default).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from triggerfish.errors import ConfigError
from triggerfish.events.model import Event, ExtensionValue
from triggerfish.runtime.base import EmitRequest, InvocationResult

SpanKind = Literal["internal", "server", "client", "producer", "consumer"]
Attributes = dict[str, str | int | float | bool]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class SpanContext:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    sampled: bool = True
    state: str | None = None  # the W3C ``tracestate``, carried unchanged

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @classmethod
    def parse(cls, traceparent: object, tracestate: object = None) -> SpanContext | None:
        """The context a ``traceparent`` names; None for anything that is not a valid
        one (absent, malformed, or with an all-zero trace or parent id)."""
        if not isinstance(traceparent, str):
            return None
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match is None:
            return None
        trace_id, span_id, flags = match.groups()
        if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return None
        state = tracestate if isinstance(tracestate, str) and tracestate else None
        return cls(trace_id, span_id, bool(int(flags, 16) & 1), state)


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time: float  # unix seconds
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Span:
    name: str
    context: SpanContext
    parent: SpanContext | None
    start: float  # unix seconds
    end: float
    kind: SpanKind = "internal"
    attributes: Attributes = field(default_factory=dict)
    events: Sequence[SpanEvent] = ()
    error: str | None = None  # a description when the span's work failed


#: Takes each finished, sampled span; must not block (``observe.otlp`` queues them).
SpanSink = Callable[[Span], None]


#: ``OTEL_TRACES_SAMPLER`` values, and the share of new traces each samples (None: the
#: share ``OTEL_TRACES_SAMPLER_ARG`` gives). A span with a parent follows the parent's
#: decision whatever the sampler, as the ``parentbased_*`` samplers do.
SAMPLERS: dict[str, float | None] = {
    "always_on": 1.0,
    "always_off": 0.0,
    "traceidratio": None,
    "parentbased_always_on": 1.0,
    "parentbased_always_off": 0.0,
    "parentbased_traceidratio": None,
}


def sampled_share(environ: Mapping[str, str]) -> float:
    """The share of traces starting here that are recorded, from OpenTelemetry's
    ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` (default: all);
    ConfigError for a sampler or an argument it does not know."""
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in SAMPLERS:
        known = ", ".join(SAMPLERS)
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER={name!r} is not a sampler Triggerfish has ({known})"
        )
    share = SAMPLERS[name]
    if share is not None:
        return share
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
    try:
        share = float(arg)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER_ARG={arg!r}: the share of traces to record, from 0 to 1"
        )
    return share


class Tracer:
    """Makes span contexts and hands finished spans to ``sink``. A trace that starts
    here is sampled with probability ``share``; a span with a parent follows it."""

    def __init__(
        self, sink: SpanSink, *, close: Callable[[], None] | None = None, share: float = 1.0
    ) -> None:
        self._sink = sink
        self._close = close
        self._random = random.Random()
        self._share = share

    def child(self, parent: SpanContext | None) -> SpanContext:
        """A new span's context: in ``parent``'s trace, or the root of a new one."""
        span_id = f"{self._random.getrandbits(64) or 1:016x}"
        if parent is None:
            sampled = self._share >= 1.0 or self._random.random() < self._share
            return SpanContext(f"{self._random.getrandbits(128) or 1:032x}", span_id, sampled)
        return SpanContext(parent.trace_id, span_id, parent.sampled, parent.state)

    def record(self, span: Span) -> None:
        if span.context.sampled:
            self._sink(span)

    def close(self) -> None:
        """Send what is still queued, then stop."""
        if self._close is not None:
            self._close()

    def invocation(
        self,
        function: str,
        version: str,
        parent: SpanContext | None,
        *,
        kind: SpanKind = "internal",
        attributes: Attributes | None = None,
    ) -> InvocationTrace:
        return InvocationTrace(self, function, version, parent, kind, attributes or {})


class InvocationTrace:
    """The spans of one invocation: ``invoke <function>`` (from the moment it asked for
    an environment to its answer, with a ``cold start`` event), ``handler <function>``
    under it (as the environment reported it), and one ``emit <topic>`` per emitted
    event under the handler's (or under the ``traceparent`` the handler gave it)."""

    def __init__(
        self,
        tracer: Tracer,
        function: str,
        version: str,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Attributes,
    ) -> None:
        self._tracer = tracer
        self._function = function
        self._parent = parent
        self._kind: SpanKind = kind
        self._attributes: Attributes = {
            "faas.name": function,
            "faas.version": version,
            **attributes,
        }
        self.context = tracer.child(parent)
        self.handler = tracer.child(self.context)
        self.started = time.time()
        self.result: InvocationResult | None = None
        self._emits: list[TracedEmit] = []
        self._emitting = 0.0

    @property
    def traceparent(self) -> str:
        """What the handler is given: the context of its own span."""
        return self.handler.traceparent

    def finished(self, result: InvocationResult) -> None:
        """Record the invoke span and, if the handler ran, its span."""
        self.result = result
        if not self.context.sampled:  # carried on, not recorded: nothing to build
            return
        end = time.time()
        tracer = self._tracer
        attributes = {
            **self._attributes,
            "faas.invocation_id": result.request_id,
            "faas.coldstart": result.cold_start,
            "triggerfish.status": result.status,
        }
        error = _error_of(result)
        events: list[SpanEvent] = []
        if result.init_duration_ms is not None:
            init_ms = result.init_duration_ms
            began = (result.started_at or end) - init_ms / 1000
            events.append(
                SpanEvent("cold start", max(self.started, began), {"init_duration_ms": init_ms})
            )
        if result.started_at:
            handler_end = result.started_at + result.duration_ms / 1000
            tracer.record(
                Span(
                    f"handler {self._function}",
                    self.handler,
                    self.context,
                    result.started_at,
                    max(result.started_at, handler_end),
                    attributes={
                        "faas.name": self._function,
                        "faas.invocation_id": result.request_id,
                        "faas.max_memory_used_mb": result.max_memory_used_mb,
                        "faas.billed_duration_ms": result.billed_duration_ms,
                    },
                    error=error,
                )
            )
        tracer.record(
            Span(
                f"invoke {self._function}",
                self.context,
                self._parent,
                self.started,
                end,
                kind=self._kind,
                attributes=attributes,
                events=events,
                error=error,
            )
        )

    def emitting(self, result: InvocationResult) -> None:
        """Give each event in ``result.emitted`` the ``traceparent`` of its own emit
        span (under the handler's, or under the one the handler set on it if that is
        of this trace); call ``published`` once they are published."""
        self._emitting = time.time()
        self._emits = []
        for request in result.emitted:
            given = request.extensions.get("traceparent")
            parent = SpanContext.parse(given, request.extensions.get("tracestate"))
            if parent is None or parent.trace_id != self.handler.trace_id:
                parent = self.handler
            context = self._tracer.child(parent)
            extensions = {**request.extensions, "traceparent": context.traceparent}
            if context.state:
                extensions["tracestate"] = context.state
            self._emits.append(TracedEmit(replace(request, extensions=extensions), context, parent))
        result.emitted = [emit.request for emit in self._emits]

    def published(self, *, error: str | None = None) -> None:
        """Record the emit spans, from ``emitting`` to now."""
        if not self.context.sampled:
            self._emits = []
            return
        end = time.time()
        for emit in self._emits:
            self._tracer.record(
                Span(
                    f"emit {emit.request.topic}",
                    emit.context,
                    emit.parent,
                    self._emitting,
                    end,
                    kind="producer",
                    attributes={
                        "messaging.system": "triggerfish",
                        "messaging.operation.type": "send",
                        "messaging.destination.name": emit.request.topic,
                        "cloudevents.event_type": emit.request.type,
                        "faas.name": self._function,
                    },
                    error=error,
                )
            )
        self._emits = []


@dataclass(frozen=True, slots=True)
class TracedEmit:
    request: EmitRequest  # as published: its ``traceparent`` names ``context``
    context: SpanContext
    parent: SpanContext


def _error_of(result: InvocationResult) -> str | None:
    if result.status == "ok":
        return None
    return f"{result.error_type or result.status}: {result.error_message or ''}".strip()


class DispatchTrace:
    """The spans of a trigger's handling of leased events: ``bus <topic>`` (from the
    bus accepting the first event to its lease) and ``dispatch <trigger>`` (from the
    lease to the outcome), both under the event's ``traceparent``; the invocation's
    spans go under the dispatch span."""

    def __init__(
        self,
        tracer: Tracer,
        trigger: str,
        event: Event,
        *,
        topic: str,
        published_at: float,
        attempt: int,
        count: int,
        function: str,
        version: str,
    ) -> None:
        self._tracer = tracer
        self._trigger = trigger
        extensions = event.extensions
        parent = SpanContext.parse(extensions.get("traceparent"), extensions.get("tracestate"))
        self.parent = parent
        self.context = tracer.child(parent)
        self.started = time.time()
        self.invocation = tracer.invocation(function, version, self.context)
        self._attributes: Attributes = {}
        if not self.context.sampled:  # carried on, not recorded: nothing to build
            return
        waited = max(0.0, self.started - published_at)
        self._attributes = {
            "messaging.system": "triggerfish",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": count,
            "cloudevents.event_id": event.id,
            "cloudevents.event_source": event.source,
            "cloudevents.event_type": event.type,
            "triggerfish.trigger": trigger,
            "triggerfish.attempt": attempt,
            "triggerfish.bus.wait_ms": round(waited * 1000, 3),
        }
        if parent is not None:  # a trace that starts here starts with the dispatch
            tracer.record(
                Span(
                    f"bus {topic}",
                    tracer.child(parent),
                    parent,
                    min(published_at, self.started),
                    self.started,
                    attributes={
                        "messaging.destination.name": topic,
                        "cloudevents.event_id": event.id,
                        "triggerfish.attempt": attempt,
                    },
                )
            )

    def finished(self) -> None:
        """Record the dispatch span, with the invocation's final status."""
        if not self.context.sampled:
            return
        result = self.invocation.result
        status = "failed" if result is None else result.status
        error = "Triggerfish failed to handle the event" if result is None else _error_of(result)
        self._tracer.record(
            Span(
                f"dispatch {self._trigger}",
                self.context,
                self.parent,
                self.started,
                time.time(),
                kind="consumer",
                attributes={**self._attributes, "triggerfish.status": status},
                error=error,
            )
        )


def ingest_parent(headers: Mapping[str, str], events: Sequence[Event]) -> SpanContext | None:
    """The parent of an ingest span: the request's ``traceparent`` header, else the
    first event's ``traceparent`` extension."""
    parent = SpanContext.parse(headers.get("traceparent"), headers.get("tracestate"))
    if parent is None and events:
        extensions = events[0].extensions
        parent = SpanContext.parse(extensions.get("traceparent"), extensions.get("tracestate"))
    return parent


def continued(events: Sequence[Event], context: SpanContext) -> list[Event]:
    """``events`` with ``context`` as their trace context, except those that carry a
    ``traceparent`` of another trace, which keep their own."""
    stamped = []
    for event in events:
        own = SpanContext.parse(event.extensions.get("traceparent"))
        if own is not None and own.trace_id != context.trace_id:
            stamped.append(event)
            continue
        extensions: dict[str, ExtensionValue] = {"traceparent": context.traceparent}
        if context.state:
            extensions["tracestate"] = context.state
        stamped.append(event.with_extensions(**extensions))
    return stamped


class IngestTrace:
    """The span of a request that puts events on the bus (``publish <topic>``, a
    webhook, an asynchronous invoke), under the request's ``traceparent`` header or
    else its first event's; the events it stores continue the trace under it."""

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        headers: Mapping[str, str],
        attributes: Attributes,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._headers = headers
        self._attributes = attributes
        self.started = time.time()
        self.parent: SpanContext | None = None
        self.context: SpanContext | None = None

    def stamp(self, events: Sequence[Event]) -> list[Event]:
        """``events`` as stored: with this span's context (see ``continued``)."""
        self.parent = ingest_parent(self._headers, events)
        self.context = self._tracer.child(self.parent)
        return continued(events, self.context)

    def finished(self, status: int, *, error: str | None = None, **attributes: int) -> None:
        if self.context is None:  # failed before it had events to store
            self.parent = ingest_parent(self._headers, ())
            self.context = self._tracer.child(self.parent)
        if not self.context.sampled:
            return
        self._tracer.record(
            Span(
                self._name,
                self.context,
                self.parent,
                self.started,
                time.time(),
                kind="server",
                attributes={
                    **self._attributes,
                    **attributes,
                    "http.request.method": "POST",
                    "http.response.status_code": status,
                },
                error=error,
            )
        )

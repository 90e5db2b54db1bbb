"""Sends the node's spans to an OpenTelemetry collector over OTLP/HTTP (protobuf).

Loaded only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and needs the ``otel`` extra
(``pip install 'triggerfish[otel]'``). Spans are built by ``observe.tracing`` with the
ids and times the node chose; here they become the SDK's ``ReadableSpan`` and go
through a ``BatchSpanProcessor``, whose thread does the sending, so recording a span
on the event loop only queues it. The exporter reads the other ``OTEL_EXPORTER_OTLP_*``
settings (headers, timeout, compression, certificates) itself; ``OTEL_TRACES_SAMPLER``
and ``OTEL_TRACES_SAMPLER_ARG`` set the share of traces starting here that are recorded
(``tracing.sampled_share``).
"""

from __future__ import annotations

import os
from typing import Any

from triggerfish import __version__
from triggerfish.errors import ConfigError
from triggerfish.observe.tracing import Span, Tracer, sampled_share

try:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigError(
        "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
        "pip install 'triggerfish[otel]' (or unset the variable)"
    ) from exc

_KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
_OK = Status(StatusCode.UNSET)


def traces_endpoint(endpoint: str) -> str:
    """The traces URL of an ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the OTLP rule for the
    signal-less variable: its base with ``v1/traces`` appended)."""
    return f"{endpoint.rstrip('/')}/v1/traces"


def otlp_tracer(
    endpoint: str, *, service_name: str, exporter: SpanExporter | None = None
) -> Tracer:
    """A tracer whose spans go to the collector at ``endpoint`` (an
    ``OTEL_EXPORTER_OTLP_ENDPOINT``), as the service ``service_name``."""
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": __version__,
            "telemetry.sdk.name": "opentelemetry",
        }
    )
    scope = InstrumentationScope("triggerfish", __version__)
    processor = BatchSpanProcessor(
        exporter or OTLPSpanExporter(endpoint=traces_endpoint(endpoint)),
        schedule_delay_millis=500,
    )

    def sink(span: Span) -> None:
        processor.on_end(_readable(span, resource, scope))

    return Tracer(sink, close=processor.shutdown, share=sampled_share(os.environ))


def _context(trace_id: str, span_id: str, sampled: bool) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=flags)


def _nanos(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _readable(span: Span, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    context = span.context
    parent = span.parent
    status = _OK if span.error is None else Status(StatusCode.ERROR, span.error)
    attributes: dict[str, Any] = dict(span.attributes)
    return ReadableSpan(
        name=span.name,
        context=_context(context.trace_id, context.span_id, context.sampled),
        parent=(
            None
            if parent is None
            else SpanContext(
                int(parent.trace_id, 16),
                int(parent.span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else 0),
            )
        ),
        resource=resource,
        attributes=attributes,
        events=[
            Event(event.name, dict(event.attributes), timestamp=_nanos(event.time))
            for event in span.events
        ],
        kind=_KINDS[span.kind],
        status=status,
        start_time=_nanos(span.start),
        end_time=_nanos(max(span.start, span.end)),
        instrumentation_scope=scope,
    )

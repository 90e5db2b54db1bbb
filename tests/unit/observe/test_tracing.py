"""The spans Triggerfish builds itself (``observe.tracing``), caught by a list, and
the node's promise that tracing off imports no OpenTelemetry SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

from triggerfish.config import load_settings
from triggerfish.errors import ConfigError
from triggerfish.events.model import Event
from triggerfish.observe.tracing import (
    IngestTrace,
    Span,
    SpanContext,
    Tracer,
    continued,
    sampled_share,
)
from triggerfish.runtime.base import EmitRequest, InvocationResult

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def tracer() -> tuple[Tracer, list[Span]]:
    spans: list[Span] = []
    return Tracer(spans.append), spans


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"01-{TRACE}-{PARENT}-01",  # a version this node does not read
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE}-{PARENT}",
    ],
)
def test_what_is_not_a_traceparent_starts_no_trace(value: str | None) -> None:
    assert SpanContext.parse(value) is None


def test_a_traceparent_keeps_its_trace_flags_and_state() -> None:
    context = SpanContext.parse(f"00-{TRACE.upper()}-{PARENT}-00", "a=1")
    assert context == SpanContext(TRACE, PARENT, sampled=False, state="a=1")
    assert context.traceparent == f"00-{TRACE}-{PARENT}-00"


def test_an_unsampled_parent_records_nothing() -> None:
    tracing, spans = tracer()
    parent = SpanContext(TRACE, PARENT, sampled=False)
    invocation = tracing.invocation("f", "v1", parent)
    invocation.finished(InvocationResult("r-1", "ok", started_at=1.0, duration_ms=2.0))
    assert spans == []
    assert invocation.traceparent.endswith("-00")


def test_an_invocation_records_the_handler_under_the_invoke_span_with_its_cold_start() -> None:
    tracing, spans = tracer()
    parent = SpanContext(TRACE, PARENT)
    invocation = tracing.invocation("f", "v1", parent)
    result = InvocationResult(
        "r-1", "error", error_type="ValueError", error_message="bad", init_duration_ms=40.0
    )
    result.started_at = invocation.started + 0.05
    result.duration_ms = 10.0
    invocation.finished(result)
    handler, invoke = spans
    assert (handler.name, invoke.name) == ("handler f", "invoke f")
    assert invoke.parent == parent
    assert handler.parent == invoke.context
    assert invocation.traceparent == f"00-{TRACE}-{handler.context.span_id}-01"
    assert handler.end - handler.start == pytest.approx(0.01)
    assert invoke.error == handler.error == "ValueError: bad"
    [cold] = invoke.events
    assert cold.name == "cold start"
    assert cold.attributes == {"init_duration_ms": 40.0}
    assert invoke.attributes["faas.coldstart"] is True


def test_each_emitted_event_continues_the_trace_under_the_handler() -> None:
    tracing, spans = tracer()
    invocation = tracing.invocation("f", "v1", SpanContext(TRACE, PARENT, state="a=1"))
    other = f"00-{'1' * 32}-{PARENT}-01"  # of another trace: replaced
    result = InvocationResult(
        "r-1",
        "ok",
        emitted=[
            EmitRequest("orders", "order.created", {}),
            EmitRequest("audit", "order.seen", {}, extensions={"traceparent": other}),
        ],
    )
    invocation.emitting(result)
    invocation.published()
    assert [span.name for span in spans] == ["emit orders", "emit audit"]
    for request, span in zip(result.emitted, spans, strict=True):
        assert span.parent == invocation.handler
        assert span.kind == "producer"
        assert request.extensions["traceparent"] == span.context.traceparent
        assert request.extensions["tracestate"] == "a=1"


def test_ingest_continues_the_request_header_and_stamps_the_events() -> None:
    tracing, spans = tracer()
    own = f"00-{'2' * 32}-{PARENT}-01"
    events = [
        Event(id="1", source="s", type="t"),
        Event(id="2", source="s", type="t", extensions={"traceparent": own}),
    ]
    ingest = IngestTrace(tracing, "publish t", {"traceparent": f"00-{TRACE}-{PARENT}-01"}, {})
    stamped = ingest.stamp(events)
    ingest.finished(202)
    [span] = spans
    assert span.parent == SpanContext(TRACE, PARENT)
    assert stamped[0].extensions["traceparent"] == span.context.traceparent
    assert stamped[1].extensions["traceparent"] == own  # another trace keeps its own
    assert span.attributes["http.response.status_code"] == 202


def test_events_without_a_header_continue_their_own_trace() -> None:
    tracing, _spans = tracer()
    event = Event(
        id="1", source="s", type="t", extensions={"traceparent": f"00-{TRACE}-{PARENT}-01"}
    )
    ingest = IngestTrace(tracing, "publish t", {}, {})
    [stamped] = ingest.stamp([event])
    assert ingest.parent == SpanContext(TRACE, PARENT)
    assert ingest.context is not None
    assert stamped.extensions["traceparent"] == ingest.context.traceparent
    assert continued([stamped], ingest.context) == [stamped]


def test_the_otel_settings_come_from_opentelemetrys_variables() -> None:
    settings = load_settings(
        environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SERVICE_NAME": "x"}
    )
    assert (settings.otel_endpoint, settings.otel_service_name) == ("http://collector:4318", "x")
    assert load_settings(environ={}).otel_endpoint == ""
    assert load_settings(environ={}).otel_service_name == "triggerfish"


def test_tracing_off_imports_no_opentelemetry_sdk() -> None:
    code = (
        "import sys\n"
        "from triggerfish.config import load_settings\n"
        "from triggerfish.node import open_tracer\n"
        "import triggerfish.api.app, triggerfish.dispatch.runner\n"
        "assert open_tracer(load_settings(environ={})) is None\n"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'opentelemetry.exporter', 'triggerfish.observe.otlp'))]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("environ", "share"),
    [
        ({}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
            0.01,
        ),
        ({"OTEL_TRACES_SAMPLER": "TraceIdRatio"}, 1.0),  # no argument: all
    ],
)
def test_the_share_of_traces_recorded_comes_from_opentelemetrys_variables(
    environ: dict[str, str], share: float
) -> None:
    assert sampled_share(environ) == share


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "not a sampler Triggerfish has"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "from 0 to 1"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "from 0 to 1"),
    ],
)
def test_a_sampler_it_cannot_follow_is_refused_with_what_it_takes(
    environ: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError, match=said):
        sampled_share(environ)


def test_a_share_of_new_traces_is_recorded_and_their_children_follow() -> None:
    spans: list[Span] = []
    tracer = Tracer(spans.append, share=0.25)
    roots = [tracer.child(None) for _ in range(4000)]
    for root in roots:
        tracer.record(Span("ingest", root, None, 0.0, 0.001))
        tracer.record(Span("invoke", tracer.child(root), root, 0.0, 0.001))
    recorded = {span.context.trace_id for span in spans}
    assert 800 < len(recorded) < 1200  # a quarter of 4000, give or take
    assert len(spans) == 2 * len(recorded)  # a recorded trace keeps all its spans

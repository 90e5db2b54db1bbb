"""OpenTelemetry through a running server: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, a
chain of two functions (the first emits to the topic of the second) is one trace in
the tracing backend, under the ``traceparent`` sent with the publish; each handler
continues it with its own OpenTelemetry SDK; a Node.js handler called synchronously
gets its span's context too."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from support.otlp import OtlpReceiver, ReceivedSpan
from support.projects import write_project
from support.server import Server, wait_for
from support.services import in_ci

pytestmark = pytest.mark.e2e

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{CALLER}-01"

FIRST = """
def handler(event, context):
    context.emit("step-two", "step.two", {"from": event["id"]})
    return {"ok": True}
"""
# What a user's own SDK does: extract the handler's context and look at its span.
SECOND = """
import os
from opentelemetry import propagate, trace

def handler(event, context):
    parent = trace.get_current_span(propagate.extract(context.trace_context))
    ids = parent.get_span_context()
    print("TRACE", os.environ["TRACEPARENT"], os.environ.get("TRACESTATE"),
          f"{ids.trace_id:032x}", f"{ids.span_id:016x}")
    return {"ok": True}
"""
GREET = """
exports.handler = async (event, context) => ({
  env: process.env.TRACEPARENT ?? null,
  context: context.traceContext,
});
"""


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tracing")
    manifest = write_project(
        root,
        {
            "first": (FIRST, {"triggers": [{"topic": "step-one"}]}),
            "second": (SECOND, {"triggers": [{"topic": "step-two"}]}),
        },
        topics={"step-one": {}, "step-two": {}},
    )
    if shutil.which("node") is not None:
        greet = root / "greet"
        greet.mkdir()
        (greet / "index.js").write_text(textwrap.dedent(GREET))
        document = yaml.safe_load(manifest.read_text())
        document["functions"]["greet"] = {
            "handler": "index.handler",
            "code": "./greet",
            "runtime": "nodejs",
        }
        manifest.write_text(yaml.safe_dump(document, sort_keys=False))
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "shop",
        # The first invocation starts its environment: a cold start on its span.
        "TRIGGERFISH_WARM_ON_DEPLOY": "false",
    }
    server = Server(root / "data", env=env).start("--deploy", str(manifest))
    try:
        yield server
    finally:
        server.stop()


def by_name(spans: list[ReceivedSpan], trace_id: str) -> dict[str, ReceivedSpan]:
    """The spans of one trace by name; a dispatch span as ``dispatch <function>`` (its
    name carries the trigger's id)."""
    named = {}
    for span in spans:
        if span.trace_id == trace_id:
            name = span.name
            if name.startswith("dispatch "):
                name = "dispatch " + span.attributes["triggerfish.trigger"].split(".")[0]
            named[name] = span
    return named


def invocation_logs(server: Server, function: str) -> list[str]:
    with server.client() as api:
        response = api.get(
            "/v1/invocations", params={"function": function, "logs": "true", "limit": 10}
        )
    assert response.status_code == 200, response.text
    return [item.get("logs") or "" for item in response.json()["invocations"]]


def test_a_chain_of_two_functions_is_one_trace_under_the_publishers_span(
    server: Server, receiver: OtlpReceiver
) -> None:
    with server.client() as api:
        response = api.post(
            "/v1/topics/step-one/events",
            content=b'{"specversion": "1.0", "id": "o-1", "source": "shop", "type": "step.one"}',
            headers={
                "content-type": "application/cloudevents+json",
                "traceparent": TRACEPARENT,
                "tracestate": "shop=1",
            },
        )
    assert response.status_code == 202, response.text

    wanted = {
        "publish step-one",
        "bus step-one",
        "dispatch first",
        "invoke first",
        "handler first",
        "emit step-two",
        "bus step-two",
        "dispatch second",
        "invoke second",
        "handler second",
    }
    spans = receiver.wait_for_spans(
        lambda spans: wanted <= set(by_name(spans, TRACE)), what="the chain's spans"
    )
    trace = by_name(spans, TRACE)
    parent_of = {name: span.parent_id for name, span in trace.items()}
    ids = {name: span.span_id for name, span in trace.items()}
    # The caller's span is the root parent; each step hangs under the one before.
    assert parent_of["publish step-one"] == CALLER
    assert trace["publish step-one"].kind == "SERVER"
    assert parent_of["bus step-one"] == ids["publish step-one"]
    assert parent_of["dispatch first"] == ids["publish step-one"]
    assert parent_of["invoke first"] == ids["dispatch first"]
    assert parent_of["handler first"] == ids["invoke first"]
    assert parent_of["emit step-two"] == ids["handler first"]
    assert trace["emit step-two"].kind == "PRODUCER"
    assert parent_of["bus step-two"] == ids["emit step-two"]
    assert parent_of["dispatch second"] == ids["emit step-two"]
    assert trace["dispatch second"].kind == "CONSUMER"
    assert parent_of["invoke second"] == ids["dispatch second"]
    assert parent_of["handler second"] == ids["invoke second"]

    # What a backend shows about them.
    assert trace["publish step-one"].resource["service.name"] == "shop"
    dispatch = trace["dispatch second"].attributes
    assert dispatch["messaging.destination.name"] == "step-two"
    assert dispatch["triggerfish.bus.wait_ms"] >= 0
    assert dispatch["triggerfish.attempt"] == 1
    first = trace["invoke first"]
    assert first.attributes["faas.name"] == "first"
    assert first.attributes["faas.coldstart"] is True
    assert first.events["cold start"]["init_duration_ms"] > 0
    handler = trace["handler first"]
    assert first.start_ns <= handler.start_ns <= handler.end_ns <= first.end_ns
    assert all(span.status != "ERROR" for span in trace.values())

    # The second handler's own SDK continued the trace from its span.
    handler_second = ids["handler second"]
    [logs] = wait_for(
        lambda: [log for log in invocation_logs(server, "second") if "TRACE" in log],
        what="the second handler's log line",
    )
    line = next(line for line in logs.splitlines() if "TRACE" in line)
    assert line.split()[-4:] == [
        f"00-{TRACE}-{handler_second}-01",
        "shop=1",
        TRACE,
        handler_second,
    ]


def test_a_synchronous_invoke_of_a_node_function_continues_the_callers_trace(
    server: Server, receiver: OtlpReceiver
) -> None:
    if shutil.which("node") is None:
        message = "Node.js is not installed (scripts/install-node.sh installs it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    caller = "b7ad6b7169203331"
    with server.client() as api:
        response = api.post(
            "/v1/functions/greet/invoke",
            json={"hello": "world"},
            headers={"traceparent": f"00-{trace_id}-{caller}-01", "tracestate": "app=7"},
        )
    assert response.status_code == 200, response.text
    seen: dict[str, Any] = response.json()

    spans = receiver.wait_for_spans(
        lambda spans: {"invoke greet", "handler greet"} <= set(by_name(spans, trace_id)),
        what="the invocation's spans",
    )
    trace = by_name(spans, trace_id)
    assert trace["invoke greet"].parent_id == caller
    assert trace["invoke greet"].kind == "SERVER"
    assert trace["handler greet"].parent_id == trace["invoke greet"].span_id
    expected = f"00-{trace_id}-{trace['handler greet'].span_id}-01"
    assert seen == {"env": expected, "context": {"traceparent": expected, "tracestate": "app=7"}}

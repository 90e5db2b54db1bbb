from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.tracing import trace_header

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]


async def test_sync_handler_result_is_its_json_return_value(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    result = await executor.invoke(make_spec("ok"), make_request({"order": 7}))
    assert result.status == "ok"
    assert orjson.loads(result.result or b"") == {"echo": {"order": 7}}
    assert result.error_type is None
    assert result.started_at > 0
    assert result.billed_duration_ms >= 1
    assert result.memory_size_mb == 128
    assert 0 < result.max_memory_used_mb <= 128


async def test_async_handler_runs_on_one_loop_for_the_environment(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("async_ok")
    await executor.invoke(spec, make_request(1))
    result = await executor.invoke(spec, make_request(2))
    assert result.status == "ok"
    assert orjson.loads(result.result or b"") == {"echo": 2, "same_loop": True, "calls": 2}


async def test_context_carries_lambda_fields_and_a_clean_environment(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    functions: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME_SECRET_FROM_PARENT", "leaked")
    spec = make_spec(
        "context_fields",
        function="greeter",
        version="3",
        memory=256,
        timeout=30.0,
        environment={"GREETING": "hi", "AWS_REGION": "overridden"},
        region="eu-west-1",
    )
    cloud_event = {"specversion": "1.0", "id": "e-1", "source": "/s", "type": "order.created"}
    call = InvocationRequest(
        request_id="req-1",
        payload=orjson.dumps(cloud_event),
        client_context={"custom": {"tenant": "acme"}},
    )
    result = await executor.invoke(spec, call)
    assert result.status == "ok", result.logs
    seen: dict[str, Any] = orjson.loads(result.result or b"")
    assert seen["aws_request_id"] == "req-1"
    assert seen["function_name"] == "greeter"
    assert seen["function_version"] == "3"
    assert seen["memory_limit_in_mb"] == "256"
    assert seen["invoked_function_arn"] == spec.arn
    assert seen["log_group_name"] == "/aws/lambda/greeter"
    assert seen["log_stream_name"].endswith("[3]triggerfish")
    assert 0 < seen["remaining"] <= 30_000
    assert seen["identity"] is None
    assert seen["client_custom"] == {"tenant": "acme"}
    assert seen["event_id"] == "e-1"
    assert seen["event_type"] == "order.created"
    assert seen["cwd"] == str(functions / "context_fields")
    assert seen["env"].pop("_X_AMZN_TRACE_ID") == trace_header("req-1")  # not one of ours
    assert seen["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "greeter",
        "AWS_LAMBDA_FUNCTION_VERSION": "3",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_REGION": "eu-west-1",
        "_HANDLER": "main.handler",
        "TRIGGERFISH_FUNCTION": "greeter",
        "GREETING": "hi",
        "HOME_SECRET_FROM_PARENT": None,
    }


async def test_invoked_arn_of_the_request_is_what_the_handler_sees(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:context_fields:live"
    result = await executor.invoke(make_spec("context_fields"), make_request({}, invoked_arn=arn))
    assert orjson.loads(result.result or b"")["invoked_function_arn"] == arn


async def test_raised_exception_has_lambdas_error_shape(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    result = await executor.invoke(make_spec("raises"), make_request({"amount": -5}))
    assert result.status == "error"
    document = result.error_document()
    assert document["errorType"] == "ValueError"
    assert document["errorMessage"] == "negative amount: -5"
    trace = "".join(document["stackTrace"])
    assert "main.py" in trace
    assert "in check" in trace
    assert "bootstrap" not in trace
    assert "[ERROR] ValueError: negative amount: -5" in result.logs


async def test_environment_survives_a_handler_error(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("raises")
    await executor.invoke(spec, make_request({"amount": -1}))
    result = await executor.invoke(spec, make_request({"amount": 1}))
    assert result.status == "ok"
    assert result.cold_start is False


@pytest.mark.parametrize(
    ("case", "handler", "error_type", "words"),
    [
        ("import_error", "main.handler", "Runtime.ImportModuleError", "triggerfish_no_such_module"),
        ("ok", "main.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing"),
        ("ok", "nomodule.handler", "Runtime.ImportModuleError", "No module named 'nomodule'"),
        ("ok", "handler", "Runtime.MalformedHandlerName", "Bad handler 'handler'"),
    ],
)
async def test_handler_that_cannot_be_loaded_is_reported_like_lambda(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    case: str,
    handler: str,
    error_type: str,
    words: str,
) -> None:
    spec = make_spec(case, handler=handler)
    result = await executor.invoke(spec, make_request({}))
    assert result.status == "error"
    assert result.error_type == error_type
    assert words in (result.error_message or "")
    assert result.cold_start
    assert error_type in result.logs
    # The environment was discarded: the next call loads the module again.
    again = await executor.invoke(spec, make_request({}))
    assert again.error_type == error_type
    assert again.cold_start


async def test_return_value_that_is_not_json_is_an_error(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    result = await executor.invoke(make_spec("bad_return"), make_request({}))
    assert result.status == "error"
    assert result.error_type == "Runtime.MarshalError"
    assert "set" in (result.error_message or "")


async def test_payload_that_is_not_json_is_an_error(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    call = InvocationRequest(request_id="r", payload=b"{not json")
    result = await executor.invoke(make_spec("ok"), call)
    assert result.status == "error"
    assert result.error_type == "Runtime.UnmarshalError"


async def test_emitted_events_are_collected_with_their_cause(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    cloud_event = {
        "specversion": "1.0",
        "id": "e-9",
        "source": "/shop",
        "type": "cart.checked_out",
        "correlationid": "e-1",
    }
    result = await executor.invoke(make_spec("emitter"), make_request(cloud_event))
    assert result.status == "ok"
    first, second = result.emitted
    assert (first.topic, first.type, first.data, first.subject) == (
        "orders",
        "order.created",
        {"n": 1},
        "o-1",
    )
    assert first.extensions == {"causationid": "e-9", "correlationid": "e-1"}
    assert (second.topic, second.data) == ("audit", [1, 2])
    assert second.extensions["tenant"] == "acme"


async def test_emits_do_not_carry_over_to_the_next_invocation(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    await executor.invoke(make_spec("emitter"), make_request({}))
    result = await executor.invoke(make_spec("emitter"), make_request({}))
    assert len(result.emitted) == 2
    assert result.emitted[0].extensions == {}


async def test_syntax_error_names_the_file_and_line(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, tmp_path: Path
) -> None:
    # Written here rather than kept as a fixture so linters never parse broken code.
    code = tmp_path / "broken"
    code.mkdir()
    (code / "main.py").write_text("def handler(event, context)\n    return None\n")
    spec = make_spec("ok", function="broken", code_dir=code)
    result = await executor.invoke(spec, make_request({}))
    assert result.status == "error"
    assert result.error_type == "Runtime.UserCodeSyntaxError"
    assert "main.py, line 1" in (result.error_message or "")

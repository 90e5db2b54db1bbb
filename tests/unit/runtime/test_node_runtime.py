"""The Node.js runtime through the real executor: Lambda's handler styles, its context
object, captured output, its error shape, limits and pre-started processes."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.results import ok_json
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]


@pytest.fixture
def kit(make_spec: Spec) -> Spec:
    def build(handler: str = "async.handler", **options: Any) -> FunctionSpec:
        options.setdefault("runtime", "nodejs")
        options.setdefault("version", handler.replace(".", "-"))
        return make_spec("node_kit", handler=handler, **options)

    return build


async def test_async_handler_returns_json_and_reports_its_cold_start(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit()
    first = await executor.invoke(spec, make_request({"order": 7}))
    second = await executor.invoke(spec, make_request({"order": 8}))
    assert ok_json(first) == {"echo": {"order": 7}, "calls": 1}
    assert ok_json(second) == {"echo": {"order": 8}, "calls": 2}  # the same warm environment
    assert first.cold_start
    assert not second.cold_start
    assert "module loaded" in first.logs
    assert "module loaded" not in second.logs
    assert "Init Duration:" in first.logs
    assert second.logs.startswith(f"START RequestId: {second.request_id} Version: ")
    assert f"REPORT RequestId: {second.request_id}\tDuration: " in second.logs
    assert 0 < second.max_memory_used_mb <= 128


async def test_context_carries_lambda_fields_and_only_the_function_variables(
    executor: ProcessExecutor,
    kit: Spec,
    make_request: Request,
    functions: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARENT_SECRET", "leaked")
    spec = kit(function="greeter", version="3", memory=256, environment={"GREETING": "hi"})
    request = make_request({"action": "context"}, trace_id="Root=1-5e1b-abc")
    seen = ok_json(await executor.invoke(spec, request))
    assert seen["awsRequestId"] == request.request_id
    assert seen["functionName"] == "greeter"
    assert seen["functionVersion"] == "3"
    assert seen["memoryLimitInMB"] == "256"
    assert seen["invokedFunctionArn"] == spec.arn
    assert seen["logGroupName"] == "/aws/lambda/greeter"
    assert seen["logStreamName"].endswith("[3]triggerfish")
    assert 0 < seen["remaining"] <= 10_000
    assert seen["waits"] is True
    assert seen["cwd"] == str(functions / "node_kit")
    assert seen["env"]["GREETING"] == "hi"
    assert seen["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "greeter"
    assert seen["env"]["_X_AMZN_TRACE_ID"] == "Root=1-5e1b-abc"
    assert "PARENT_SECRET" not in seen["env"]


async def test_console_output_is_captured_per_invocation_in_lambda_format(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit()
    logged = await executor.invoke(spec, make_request({"action": "log", "who": "ada"}))
    quiet = await executor.invoke(spec, make_request({}))
    assert f"\t{logged.request_id}\tINFO\thello from ada\n" in logged.logs
    assert f"\t{logged.request_id}\tERROR\tan error line\n" in logged.logs
    assert "raw stdout\n" in logged.logs
    assert "hello from" not in quiet.logs


async def test_output_over_the_log_limit_is_cut_and_says_so(
    tmp_path: Path, kit: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, log_limit=4096)
    await executor.start()
    try:
        result = await executor.invoke(kit(), make_request({"action": "flood", "lines": 200}))
    finally:
        await executor.stop(grace=1.0)
    assert result.status == "ok"
    assert "[Triggerfish: log truncated," in result.logs
    assert len(result.logs) < 6000


async def test_thrown_error_has_lambdas_shape(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    result = await executor.invoke(kit(), make_request({"action": "throw"}))
    assert result.status == "error"
    assert result.error_document()["errorType"] == "OrderError"
    assert result.error_message == "order 7 is missing"
    assert result.stack_trace[0] == "OrderError: order 7 is missing"
    assert any("async.js" in line for line in result.stack_trace)
    assert "\tERROR\tInvoke Error \t" in result.logs
    again = await executor.invoke(kit(), make_request({}))
    assert not again.cold_start  # a handler error keeps the environment


async def test_non_error_values_and_bad_results_are_errors_too(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    thrown = await executor.invoke(kit(), make_request({"action": "reject-string"}))
    assert (thrown.error_type, thrown.error_message) == ("string", "plain string")
    circular = await executor.invoke(kit(), make_request({"action": "circular"}))
    assert circular.error_type == "Runtime.MarshalError"


async def test_callback_handler_answers_once_the_event_loop_is_empty(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit("callback.handler")
    waited = ok_json(await executor.invoke(spec, make_request({"n": 4})))
    assert waited == {"doubled": 8, "ticksBefore": 0}
    # The 30 ms timer of the first call ran before it answered; this one does not wait.
    hurried = ok_json(await executor.invoke(spec, make_request({"n": 5, "dontWait": True})))
    assert hurried == {"doubled": 10, "ticksBefore": 1}
    failed = await executor.invoke(spec, make_request({"fail": True}))
    assert (failed.error_type, failed.error_message) == ("TypeError", "bad input")


async def test_context_succeed_and_fail_still_work(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit("legacy.handler")
    assert ok_json(await executor.invoke(spec, make_request({}))) == {"legacy": True}
    failed = await executor.invoke(spec, make_request({"fail": True}))
    assert failed.error_message == "legacy failure"


@pytest.mark.parametrize(
    ("case", "handler", "expected"),
    [
        ("node_kit", "esm.handler", {"esm": True, "got": {"n": 1}}),
        ("node_kit", "common.handler", {"cjs": True, "got": {"n": 1}}),
        ("node_module", "index.handler", {"module": "esm", "name": "node_module", "got": {"n": 1}}),
    ],
)
async def test_es_modules_and_commonjs_load(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    case: str,
    handler: str,
    expected: dict[str, Any],
) -> None:
    spec = make_spec(case, handler=handler, runtime="nodejs20.x")
    assert ok_json(await executor.invoke(spec, make_request({"n": 1}))) == expected


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("broken.handler", "Runtime.ImportModuleError", "Cannot find module 'triggerfish-no-such"),
        ("syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected token"),
        ("noexport.handler", "Runtime.HandlerNotFound", "noexport.handler is undefined"),
        ("absent.handler", "Runtime.ImportModuleError", "Cannot find module 'absent'"),
    ],
)
async def test_init_failures_name_the_problem(
    executor: ProcessExecutor,
    kit: Spec,
    make_request: Request,
    handler: str,
    error_type: str,
    message: str,
) -> None:
    result = await executor.invoke(kit(handler), make_request({}))
    assert result.status == "error"
    assert result.error_type == error_type
    assert message in (result.error_message or "")
    assert result.cold_start


async def test_timeout_kills_the_environment_and_the_next_call_starts_afresh(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit(timeout=0.5)
    before = ok_json(await executor.invoke(spec, make_request({"action": "context"})))
    hung = await executor.invoke(spec, make_request({"action": "hang"}))
    assert hung.status == "timeout"
    assert hung.error_message == "Task timed out after 0.50 seconds"
    after = await executor.invoke(spec, make_request({"action": "context"}))
    assert after.cold_start
    assert ok_json(after)["pid"] != before["pid"]


@pytest.mark.parametrize("action", ["heap", "buffers"])
async def test_memory_over_the_size_is_oom(
    executor: ProcessExecutor, kit: Spec, make_request: Request, action: str
) -> None:
    spec = kit(memory=128)
    result = await executor.invoke(spec, make_request({"action": action}))
    assert result.status == "oom"
    assert result.error_type == "Runtime.OutOfMemory"
    assert (await executor.invoke(spec, make_request({}))).cold_start


async def test_exit_and_unhandled_rejection_end_the_environment(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit()
    exited = await executor.invoke(spec, make_request({"action": "exit", "code": 3}))
    assert exited.status == "crashed"
    assert exited.error_message == "Runtime exited with error: exit status 3"
    rejected = await executor.invoke(spec, make_request({"action": "unhandled"}))
    assert rejected.error_type == "Runtime.UnhandledPromiseRejection"
    assert rejected.error_message == "Error: nobody waits for me"
    after = await executor.invoke(spec, make_request({}))
    assert after.status == "ok"
    assert after.cold_start


async def test_emit_publishes_after_the_invocation(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    result = await executor.invoke(kit(), make_request({"action": "emit", "id": 5}))
    [event] = result.emitted
    assert (event.topic, event.type, event.data) == ("orders.shipped", "order.shipped", {"id": 5})
    assert event.subject == "order/5"
    assert event.extensions == {"priority": 2}


async def test_a_pre_started_process_becomes_the_next_environment(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    first = ok_json(await executor.invoke(kit(function="one"), make_request({"action": "context"})))
    spares = executor.node_spare_pids()
    assert len(spares) == 1
    assert first["pid"] not in spares
    other = kit(function="two", environment={"GREETING": "from the spare"})
    second = ok_json(await executor.invoke(other, make_request({"action": "context"})))
    assert second["pid"] == spares[0]
    assert second["functionName"] == "two"
    assert second["env"]["GREETING"] == "from the spare"
    assert executor.node_spare_pids() != spares  # a new spare replaced it


async def test_a_node_version_that_is_not_installed_fails_clearly(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    result = await executor.invoke(kit(runtime="nodejs99.x"), make_request({}))
    assert result.error_type == "Runtime.StartError"
    assert "needs Node.js 99" in (result.error_message or "")


async def test_calls_queue_behind_a_running_one_and_run_once_or_go_elsewhere(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit(function="queued", max_concurrency=1)
    warm = ok_json(await executor.invoke(spec, make_request({"action": "sleep", "ms": 0})))
    quick = await asyncio.gather(
        *(executor.invoke(spec, make_request({"action": "sleep", "ms": 0})) for _ in range(12))
    )
    counts = sorted(ok_json(result)["calls"] for result in quick)
    assert counts == list(range(warm["calls"] + 1, warm["calls"] + 13))
    (stats,) = [s for s in executor.pool_stats() if s.function == "queued"]
    assert stats.handed_over >= 11
    # One queued behind a call that turns out slow is taken back at its start-by and,
    # with its wait run out, refused: it never runs.
    requests = [make_request({"action": "sleep", "ms": ms}) for ms in (0, 600, 0)]
    calls = [
        asyncio.create_task(executor.invoke(spec, each, wait=wait))
        for each, wait in zip(requests, (5.0, 5.0, 0.2), strict=True)
    ]
    assert (await calls[2]).status == "throttled"
    assert not calls[1].done()
    before = max(counts)
    for index, task in enumerate(calls[:2]):
        answer = ok_json(await task)
        assert (answer["calls"], answer["id"]) == (before + 1 + index, requests[index].request_id)
    # Stays: the environment's skip for the call taken back arrives with nothing in
    # flight, and nothing the executor shows tells when it has.
    await asyncio.sleep(0.1)
    last = make_request({"action": "sleep", "ms": 0})
    after = ok_json(await executor.invoke(spec, last))
    assert (after["calls"], after["id"], after["pid"]) == (before + 3, last.request_id, warm["pid"])


async def test_a_timer_left_by_init_does_not_end_a_callback_handler_early(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    # Init's one-off timer fires while the cold invocation waits 200 ms for its own
    # timer, and its interval keeps ticking: neither decides when the answer goes.
    spec = kit("inittimer.handler", timeout=5.0)
    cold = await executor.invoke(spec, make_request({"n": 3}))
    assert cold.cold_start
    assert ok_json(cold) == {"tripled": 9, "initTimerFired": True}
    assert cold.duration_ms >= 200
    warm = await executor.invoke(spec, make_request({"n": 4}))
    assert ok_json(warm) == {"tripled": 12, "initTimerFired": True}
    assert warm.duration_ms < 2000  # the interval from init does not hold it

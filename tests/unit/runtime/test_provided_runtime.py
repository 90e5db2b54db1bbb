"""``provided`` runtimes: the function's own ``bootstrap`` talks to the Lambda Runtime API
that each environment serves, with Lambda's headers, status codes and limits; AWS's own
runtime interface client and a shell script with curl both run unmodified."""

from __future__ import annotations

import asyncio
import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.results import ok_json
from triggerfish.errors import ConfigError
from triggerfish.functions.build import Builder
from triggerfish.functions.manifest import load_manifest
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]

FUNCTIONS = Path(__file__).resolve().parents[2] / "fixtures" / "functions"


@pytest.fixture
def kit(make_spec: Spec) -> Spec:
    def build(handler: str = "main.handler", **options: Any) -> FunctionSpec:
        options.setdefault("runtime", "provided.al2023")
        options.setdefault("version", handler.replace(".", "-"))
        return make_spec("provided_kit", handler=handler, **options)

    return build


async def test_bootstrap_serves_invocations_and_its_output_is_logged(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit()
    first = await executor.invoke(spec, make_request({"n": 1}))
    second = await executor.invoke(spec, make_request({"n": 2}))
    assert ok_json(first) == {"echo": {"n": 1}}
    assert ok_json(second) == {"echo": {"n": 2}}
    assert first.cold_start
    assert not second.cold_start
    assert "runtime starting with handler main.handler" in first.logs  # the init phase
    assert f"handling {second.request_id}" in second.logs
    assert "runtime starting" not in second.logs
    assert f"REPORT RequestId: {second.request_id}\tDuration: " in second.logs


async def test_next_carries_lambdas_headers(
    executor: ProcessExecutor, kit: Spec, make_request: Request, functions: Path
) -> None:
    spec = kit(timeout=7.0)
    request = make_request(
        {"action": "headers"}, trace_id="Root=1-abc-def", client_context={"custom": {"k": 1}}
    )
    seen = ok_json(await executor.invoke(spec, request))
    headers = seen["headers"]
    assert seen["status"] == 200
    assert headers["Lambda-Runtime-Aws-Request-Id"] == request.request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == spec.arn
    assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-abc-def"
    assert json.loads(headers["Lambda-Runtime-Client-Context"]) == {"custom": {"k": 1}}
    remaining = int(headers["Lambda-Runtime-Deadline-Ms"]) - seen["now_ms"]
    assert 0 < remaining <= 7000
    assert seen["api"].startswith("127.0.0.1:")
    assert seen["cwd"] == str(functions / "provided_kit")


async def test_error_endpoint_gives_lambdas_error_shape(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    result = await executor.invoke(kit(), make_request({"action": "fail"}))
    assert result.status == "error"
    assert result.error_document() == {
        "errorType": "PaymentError",
        "errorMessage": "card declined",
        "stackTrace": ["charge()", "main()"],
    }


async def test_calls_out_of_turn_get_lambdas_status_codes(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    seen = ok_json(await executor.invoke(kit(), make_request({"action": "misuse"})))
    assert seen["wrong_id"] == 400
    assert seen["wrong_id_body"]["errorType"] == "InvalidRequestID"
    assert "not-this-one" in seen["wrong_id_body"]["errorMessage"]
    assert seen["init_error_late"] == 403
    assert seen["unknown_path"] == 404
    assert seen["wrong_method"] == 405


async def test_a_chunked_response_is_read_whole(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    assert ok_json(await executor.invoke(kit(), make_request({"action": "chunked"}))) == {
        "chunked": True
    }


async def test_a_response_over_six_megabytes_is_refused_and_the_runtime_goes_on(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit()
    big = await executor.invoke(spec, make_request({"action": "big"}))
    assert big.status == "error"
    assert big.error_type == "Function.ResponseSizeTooLarge"
    after = await executor.invoke(spec, make_request({"n": 3}))
    assert ok_json(after) == {"echo": {"n": 3}}
    assert "big answered 413" in after.logs
    assert '"errorType": "RequestEntityTooLarge"' in after.logs
    assert not after.cold_start


async def test_bootstrap_exit_during_an_invocation_is_a_crash(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit()
    crashed = await executor.invoke(spec, make_request({"action": "exit", "code": 4}))
    assert crashed.status == "crashed"
    assert crashed.error_message == "Runtime exited with error: exit status 4"
    assert "handling" in crashed.logs
    after = await executor.invoke(spec, make_request({}))
    assert after.status == "ok"
    assert after.cold_start


async def test_a_slow_bootstrap_times_out(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    result = await executor.invoke(
        kit(timeout=0.5), make_request({"action": "sleep", "seconds": 30})
    )
    assert result.status == "timeout"


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("init.fail", "Config.Missing", "no DATABASE_URL"),
        ("init.exit", "Runtime.ExitError", "Runtime exited with error: exit status 3"),
    ],
)
async def test_init_failures_are_reported(
    executor: ProcessExecutor,
    kit: Spec,
    make_request: Request,
    handler: str,
    error_type: str,
    message: str,
) -> None:
    result = await executor.invoke(kit(handler), make_request({}))
    assert result.status == "error"
    assert (result.error_type, result.error_message) == (error_type, message)
    assert result.cold_start
    assert f"runtime starting with handler {handler}" in result.logs


async def test_a_code_folder_without_bootstrap_cannot_start(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, tmp_path: Path
) -> None:
    spec = make_spec("empty", code_dir=tmp_path, runtime="provided")
    result = await executor.invoke(spec, make_request({}))
    assert result.error_type == "Runtime.InvalidEntrypoint"
    assert "bootstrap" in (result.error_message or "")


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)
async def test_a_shell_script_with_curl_is_a_runtime(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("provided_curl", handler="function.handler", runtime="provided")
    first = await executor.invoke(spec, make_request({"x": 1}))
    assert ok_json(first) == {"echo": {"x": 1}, "shell": "bash"}
    assert 'got event: {"x":1}' in first.logs
    failed = await executor.invoke(spec, make_request({"x": "fail"}))
    assert (failed.error_type, failed.error_message) == ("Handler.Failed", "the handler failed")
    assert ok_json(await executor.invoke(spec, make_request({"y": 2})))["echo"] == {"y": 2}


@pytest.fixture(scope="module")
def ric_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The function's environment with awslambdaric from its requirements.txt."""
    builder = Builder(tmp_path_factory.mktemp("envs"))
    built = asyncio.run(builder.ensure(FUNCTIONS / "provided_ric", function="ric"))
    assert built is not None
    return built.python


async def test_awslambdaric_runs_a_python_handler_unmodified(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, ric_python: str
) -> None:
    spec = make_spec("provided_ric", runtime="provided", python=ric_python, function="ric")
    request = make_request({"order": 1})
    seen = ok_json(await executor.invoke(spec, request))
    assert seen["client"] == "awslambdaric"
    assert seen["python"].startswith(str(Path(ric_python).parent))  # the function's venv
    assert seen["echo"] == {"order": 1}
    assert seen["request_id"] == request.request_id
    assert (seen["function_name"], seen["arn"]) == ("ric", spec.arn)
    failed = await executor.invoke(spec, make_request({"fail": True}))
    assert (failed.error_type, failed.error_message) == ("ValueError", "asked to fail")
    assert any("main.py" in line for line in failed.stack_trace)
    logged = await executor.invoke(spec, make_request({}))
    assert "[INFO]\t" in logged.logs
    assert f"handling {logged.request_id}" in logged.logs


def _manifest(root: Path, runtime: str, files: dict[str, str], mode: int = 0o755) -> Path:
    code = root / "fn"
    code.mkdir(parents=True)
    for name, text in files.items():
        (code / name).write_text(text)
        (code / name).chmod(mode)
    manifest = root / "triggerfish.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            functions:
              fn:
                handler: main.handler
                runtime: {runtime}
            """
        )
    )
    return manifest


@pytest.mark.parametrize("runtime", ["provided", "provided.al2", "provided.al2023"])
def test_manifest_accepts_provided_runtimes_with_an_executable_bootstrap(
    tmp_path: Path, runtime: str
) -> None:
    manifest = load_manifest(_manifest(tmp_path, runtime, {"bootstrap": "#!/bin/sh\n"}))
    assert manifest.functions["fn"].runtime == runtime


def test_manifest_wants_an_executable_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs an executable 'bootstrap'"):
        load_manifest(_manifest(tmp_path / "a", "provided", {"main.py": ""}))
    with pytest.raises(ConfigError, match="is not executable; run chmod"):
        load_manifest(_manifest(tmp_path / "b", "provided", {"bootstrap": "#!/bin/sh\n"}, 0o644))


async def test_json_format_makes_the_relays_lines_lambda_records(
    executor: ProcessExecutor, kit: Spec, make_request: Request
) -> None:
    spec = kit(environment={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    result = await executor.invoke(spec, make_request({"n": 3}))
    assert ok_json(result) == {"echo": {"n": 3}}
    records = [json.loads(line) for line in result.logs.splitlines() if line.startswith("{")]
    assert [r["type"] for r in records] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    assert records[0]["record"]["requestId"] == result.request_id
    assert records[1]["record"]["status"] == "success"
    assert "initDurationMs" in records[2]["record"]["metrics"]
    assert f"handling {result.request_id}" in result.logs  # the bootstrap's, as it wrote it
    assert "START RequestId" not in result.logs

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]

REPORT = re.compile(
    r"REPORT RequestId: (?P<id>\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms"
    r"\tMemory Size: 128 MB\tMax Memory Used: \d+ MB(?P<init>\tInit Duration: \d+\.\d\d ms)?\n$"
)


async def test_logs_frame_the_output_with_start_end_and_report(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    call = make_request({"tag": "one"})
    result = await executor.invoke(make_spec("chatty", version="v7"), call)
    lines = result.logs.splitlines()
    assert lines[0] == "importing chatty"  # init output, before the first START
    assert lines[1] == f"START RequestId: {call.request_id} Version: v7"
    assert lines[2:4] == ["stdout one", "stderr one"]
    assert lines[4].startswith("[INFO]\t")
    assert lines[4].endswith(f"\t{call.request_id}\tlogged one")
    assert lines[5] == "fd one"  # written below Python, on the file descriptor
    assert lines[6] == f"END RequestId: {call.request_id}"
    match = REPORT.search(result.logs)
    assert match is not None
    assert match["id"] == call.request_id
    assert match["init"] is not None


async def test_each_invocation_has_only_its_own_output(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("chatty")
    await executor.invoke(spec, make_request({"tag": "one"}))
    second = await executor.invoke(spec, make_request({"tag": "two"}))
    assert "one" not in second.logs
    assert "importing chatty" not in second.logs
    assert "stdout two" in second.logs
    match = REPORT.search(second.logs)
    assert match is not None
    assert match["init"] is None  # warm: no Init Duration


async def test_output_over_the_log_limit_is_truncated_with_a_marker(
    tmp_path: Path, make_spec: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, log_limit=1000)
    try:
        spec = make_spec("chatty")
        flooded = await executor.invoke(spec, make_request({"tag": "a", "flood": 50_000}))
        assert flooded.status == "ok"
        assert "log truncated" in flooded.logs
        assert len(flooded.logs) < 2000
        assert flooded.logs.rstrip().splitlines()[-1].startswith("REPORT")
        quiet = await executor.invoke(spec, make_request({"tag": "b"}))
        assert "log truncated" not in quiet.logs
        assert "stdout b" in quiet.logs
    finally:
        await executor.stop(grace=1.0)


JSON_LOGS = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}


async def test_a_crash_in_json_format_is_told_in_json_records(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("crash", environment=JSON_LOGS)
    call = make_request({"how": "exit", "code": 3})
    crashed = await executor.invoke(spec, call)
    assert crashed.status == "crashed"
    lines = crashed.logs.splitlines()
    assert "about to go" in lines  # printed: as printed, after the start record
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == len(lines) - 1, lines
    start, error, done, report = records
    assert start["type"] == "platform.start"
    assert lines.index("about to go") == 1
    assert (error["level"], error["errorType"]) == ("ERROR", "Runtime.ExitError")
    assert error["errorMessage"] == "Runtime exited with error: exit status 3"
    assert error["requestId"] == call.request_id
    assert done == {
        "time": done["time"],
        "type": "platform.runtimeDone",
        "record": {"requestId": call.request_id, "status": "error"},
    }
    assert report["record"]["status"] == "crashed"


async def test_a_failed_init_in_json_format_is_told_in_json_records(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("import_error", environment=JSON_LOGS)
    failed = await executor.invoke(spec, make_request({}))
    assert failed.status == "error"
    records = [json.loads(line) for line in failed.logs.splitlines() if line.startswith("{")]
    kinds = [r.get("type") or r.get("level") for r in records]
    assert kinds[-4:] == ["platform.start", "ERROR", "platform.runtimeDone", "platform.report"]
    assert records[-3]["errorType"] == "Runtime.ImportModuleError"
    assert "initDurationMs" in records[-1]["record"]["metrics"]
    assert "START RequestId" not in failed.logs

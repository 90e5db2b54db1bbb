from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from support.results import ok_json
from triggerfish.runtime.base import FunctionSpec, InvocationRequest, InvocationResult
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]
Eventually = Callable[..., Awaitable[bool]]
Gone = Callable[[int], bool]


def body(result: InvocationResult) -> dict[str, object]:
    value = ok_json(result)
    assert isinstance(value, dict)
    return value


def snap_spec(make_spec: Spec, log: Path, **options: object) -> FunctionSpec:
    return make_spec("snap", snapstart=True, environment={"SNAP_LOG": str(log)}, **options)


async def test_the_init_runs_once_per_version_and_every_environment_is_restored(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, tmp_path: Path
) -> None:
    log = tmp_path / "snap.log"
    spec = snap_spec(make_spec, log, max_concurrency=3)
    results = await asyncio.gather(
        *(executor.invoke(spec, make_request({"seconds": 0.3})) for _ in range(3))
    )
    seen = [body(result) for result in results]
    pids = {entry["pid"] for entry in seen}
    template = executor.snapshot_pid(spec)
    assert len(pids) == 3
    assert {entry["ppid"] for entry in seen} == {template}
    assert len({entry["random"] for entry in seen}) == 3  # reseeded in every fork
    assert {entry["init_type"] for entry in seen} == {"snap-start"}
    assert all(result.cold_start for result in results)
    lines = log.read_text().splitlines()
    assert lines.count(f"init {template}") == 1
    assert lines.count(f"before {template}") == 1
    assert sorted(line for line in lines if line.startswith("after")) == sorted(
        f"after {pid}" for pid in pids
    )
    assert sum("importing snap" in result.logs for result in results) == 1
    other = await executor.invoke(snap_spec(make_spec, log, version="v2"), make_request({}))
    assert other.status == "ok"
    assert sum(line.startswith("init") for line in log.read_text().splitlines()) == 2


async def test_scaling_from_zero_forks_the_snapshot_again(
    tmp_path: Path,
    make_spec: Spec,
    make_request: Request,
    eventually: Eventually,
    gone: Gone,
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path / "run")
    await executor.start()
    try:
        log = tmp_path / "snap.log"
        spec = snap_spec(make_spec, log, idle_ttl=0.1)
        first = body(await executor.invoke(spec, make_request({})))
        assert await eventually(lambda: gone(int(str(first["pid"]))))
        again = await executor.invoke(spec, make_request({}))
        assert again.cold_start
        assert body(again)["ppid"] == first["ppid"]
        assert sum(line.startswith("init") for line in log.read_text().splitlines()) == 1
    finally:
        await executor.stop(grace=1.0)


async def test_a_dead_snapshot_is_rebuilt(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    tmp_path: Path,
    eventually: Eventually,
    gone: Gone,
) -> None:
    log = tmp_path / "snap.log"
    spec = snap_spec(make_spec, log, max_concurrency=2)
    first = body(await executor.invoke(spec, make_request({})))
    template = executor.snapshot_pid(spec)
    assert template is not None
    os.kill(template, signal.SIGKILL)
    assert await eventually(lambda: gone(template))
    both = await asyncio.gather(
        *(executor.invoke(spec, make_request({"seconds": 0.3})) for _ in range(2))
    )
    by_pid = {seen["pid"]: seen for seen in map(body, both)}
    assert first["pid"] in by_pid  # the warm environment lives on
    (new,) = [seen for pid, seen in by_pid.items() if pid != first["pid"]]
    assert new["ppid"] == executor.snapshot_pid(spec) != template
    assert sum(line.startswith("init") for line in log.read_text().splitlines()) == 2


async def test_an_import_error_of_a_snapstart_function_is_reported(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    result = await executor.invoke(make_spec("import_error", snapstart=True), make_request({}))
    assert result.status == "error"
    assert result.error_type == "Runtime.ImportModuleError"
    assert result.init_duration_ms is not None


async def test_a_hanging_snapstart_import_hits_the_init_timeout(
    tmp_path: Path, make_spec: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, init_timeout=0.5)
    await executor.start()
    try:
        spec = make_spec("hang_import", snapstart=True)
        result = await executor.invoke(spec, make_request({}))
        assert result.status == "timeout"
        assert result.error_type == "Runtime.InitTimeout"
        assert executor.snapshot_pid(spec) is None
    finally:
        await executor.stop(grace=1.0)


async def test_a_failing_hook_fails_the_init_with_its_error(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, tmp_path: Path
) -> None:
    code = tmp_path / "hooked"
    code.mkdir()
    (code / "main.py").write_text(
        "from triggerfish.runtime import snapstart\n"
        "def refuse():\n"
        "    raise RuntimeError('no snapshot today')\n"
        "snapstart.register_before_snapshot(refuse)\n"
        "def handler(event, context):\n"
        "    return 1\n"
    )
    spec = make_spec("hooked", code_dir=code, snapstart=True)
    result = await executor.invoke(spec, make_request({}))
    assert result.status == "error"
    assert result.error_type == "Runtime.BeforeSnapshotError"
    assert "no snapshot today" in (result.error_message or "")
    plain = await executor.invoke(make_spec("hooked", code_dir=code, version="2"), make_request({}))
    assert plain.status == "ok"  # without snapstart the hooks never run

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from triggerfish.runtime.base import FunctionSpec, InvocationRequest, InvocationResult
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]
Eventually = Callable[..., Awaitable[bool]]
Gone = Callable[[int], bool]


def body(result: InvocationResult) -> dict[str, object]:
    assert result.status == "ok", result.error_document()
    value = orjson.loads(result.result or b"")
    assert isinstance(value, dict)
    return value


async def test_cold_start_is_a_fork_of_the_zygote_with_an_init_duration(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    zygote = executor.zygote_pids()[sys.executable]
    result = await executor.invoke(make_spec("inspect"), make_request({}))
    seen = body(result)
    assert seen["ppid"] == zygote
    assert result.cold_start
    assert result.init_duration_ms is not None
    assert result.init_duration_ms > 0
    assert f"Init Duration: {result.init_duration_ms:.2f} ms" in result.logs
    assert seen["init_type"] == "on-demand"


async def test_a_forked_environment_shares_nothing_with_the_zygote(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, functions: Path
) -> None:
    spec = make_spec("inspect", max_concurrency=2)
    one, two = await asyncio.gather(
        executor.invoke(spec, make_request({"seconds": 0.2})),
        executor.invoke(spec, make_request({"seconds": 0.2})),
    )
    first, second = body(one), body(two)
    assert first["pid"] != second["pid"]
    for seen in (first, second):
        assert seen["sid"] == seen["pid"]  # its own session and process group
        assert seen["cwd"] == str(functions / "inspect")
        assert seen["sockets"] == 1  # its channel only, not the zygote's control socket
        assert seen["sigint_default"]
        assert seen["sigterm_default"]
        assert seen["sigchld_default"]
    assert first["random"] != second["random"]


async def test_a_dead_zygote_is_replaced_and_its_environments_keep_working(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    eventually: Eventually,
    gone: Gone,
) -> None:
    before = body(await executor.invoke(make_spec("inspect"), make_request({})))
    zygote = executor.zygote_pids()[sys.executable]
    os.kill(zygote, signal.SIGKILL)
    assert await eventually(lambda: gone(zygote))
    warm = body(await executor.invoke(make_spec("inspect"), make_request({})))
    assert warm["pid"] == before["pid"]
    fresh = await executor.invoke(make_spec("inspect", function="another"), make_request({}))
    assert fresh.cold_start
    assert body(fresh)["ppid"] == executor.zygote_pids()[sys.executable] != zygote


async def test_an_orphaned_environment_that_crashes_is_reported(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    eventually: Eventually,
    gone: Gone,
) -> None:
    spec = make_spec("crash")
    assert (await executor.invoke(spec, make_request({"how": "none"}))).status == "ok"
    zygote = executor.zygote_pids()[sys.executable]
    os.kill(zygote, signal.SIGKILL)
    assert await eventually(lambda: gone(zygote))
    crashed = await executor.invoke(spec, make_request({"how": "exit", "code": 3}))
    assert crashed.status == "crashed"
    assert "about to go" in crashed.logs
    after = await executor.invoke(spec, make_request({"how": "none"}))
    assert after.status == "ok"
    assert after.cold_start


async def test_a_hanging_import_hits_the_init_timeout_and_blocks_no_other_start(
    tmp_path: Path, make_spec: Spec, make_request: Request, eventually: Eventually
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, init_timeout=1.0)
    await executor.start()
    try:
        hanging = asyncio.create_task(executor.invoke(make_spec("hang_import"), make_request({})))
        assert await eventually(lambda: any(s.starting == 1 for s in executor.pool_stats()))
        other = await executor.invoke(make_spec("counter"), make_request({}))
        assert other.status == "ok"
        assert not hanging.done()
        result = await hanging
        assert result.status == "timeout"
        assert result.error_type == "Runtime.InitTimeout"
    finally:
        await executor.stop(grace=1.0)


async def test_without_a_zygote_environments_are_fresh_interpreters(
    tmp_path: Path, make_spec: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, zygote=False)
    await executor.start()
    try:
        result = await executor.invoke(make_spec("inspect"), make_request({}))
        assert body(result)["ppid"] == os.getpid()
        assert result.cold_start
        assert executor.zygote_pids() == {}
    finally:
        await executor.stop(grace=1.0)

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from triggerfish.runtime.base import FunctionSpec, InvocationRequest, InvocationResult
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]
Eventually = Callable[..., Awaitable[bool]]


def pid_of(result: InvocationResult) -> int:
    return int(orjson.loads(result.result or b"")["pid"])


async def test_warm_environment_is_reused_without_init(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("counter")
    first = await executor.invoke(spec, make_request({}))
    second = await executor.invoke(spec, make_request({}))
    assert first.cold_start
    assert first.init_duration_ms is not None
    assert second.init_duration_ms is None
    assert pid_of(first) == pid_of(second)
    assert orjson.loads(second.result or b"")["calls"] == 2


async def test_versions_do_not_share_environments(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    one = await executor.invoke(make_spec("counter", version="1"), make_request({}))
    two = await executor.invoke(make_spec("counter", version="2"), make_request({}))
    assert two.cold_start
    assert pid_of(one) != pid_of(two)


async def test_concurrent_invocations_get_their_own_environments(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", max_concurrency=2)
    results = await asyncio.gather(
        executor.invoke(spec, make_request({"seconds": 0.3})),
        executor.invoke(spec, make_request({"seconds": 0.3})),
    )
    assert [result.status for result in results] == ["ok", "ok"]
    assert pid_of(results[0]) != pid_of(results[1])


async def test_call_over_max_concurrency_is_throttled_or_waits(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", max_concurrency=1)
    assert executor.free_slots(spec) == 1
    running = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0.5})))
    await asyncio.sleep(0)  # the task takes its slot before its first real wait
    assert executor.free_slots(spec) == 0
    refused = await executor.invoke(spec, make_request({"seconds": 0}), wait=0)
    assert refused.status == "throttled"
    assert refused.error_type == "TooManyRequestsException"
    impatient = await executor.invoke(spec, make_request({"seconds": 0}), wait=0.05)
    assert impatient.status == "throttled"
    patient = await executor.invoke(spec, make_request({"seconds": 0}))
    assert patient.status == "ok"
    assert running.done()
    assert (await running).status == "ok"
    assert pid_of(patient) == pid_of(await running)  # the slot and its warm environment
    assert executor.free_slots(spec) == 1


async def test_idle_environments_are_reaped_after_the_ttl(
    tmp_path: Path, make_spec: Spec, make_request: Request, eventually: Eventually
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, idle_ttl=0.2)
    await executor.start()
    try:
        spec = make_spec("counter")
        first = await executor.invoke(spec, make_request({}))
        assert await eventually(lambda: executor.pool_stats()[0].reaped == 1)
        second = await executor.invoke(spec, make_request({}))
        assert second.cold_start
        assert pid_of(first) != pid_of(second)
    finally:
        await executor.stop(grace=1.0)


async def test_retire_stops_the_warm_environments_of_a_function(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("counter")
    first = await executor.invoke(spec, make_request({}))
    await executor.retire("counter")
    second = await executor.invoke(spec, make_request({}))
    assert second.cold_start
    assert pid_of(first) != pid_of(second)


async def test_stop_lets_invocations_in_flight_finish_within_the_grace(
    tmp_path: Path, make_spec: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path)
    await executor.start()
    spec = make_spec("sleepy")
    running = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0.3})))
    await asyncio.sleep(0)  # the task takes its slot before its first real wait
    await executor.stop(grace=10.0)
    assert (await running).status == "ok"
    after = await executor.invoke(spec, make_request({"seconds": 0}))
    assert after.status == "throttled"


async def test_stop_kills_invocations_that_outlast_the_grace(
    tmp_path: Path, make_spec: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path)
    await executor.start()
    spec = make_spec("sleepy")
    running = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 60})))
    await asyncio.sleep(0)  # the task takes its slot before its first real wait
    await executor.stop(grace=0.1)
    result = await running
    assert result.status == "crashed"
    assert "stopped" in (result.error_message or "")


async def test_waiting_callers_are_refused_when_stopping(
    tmp_path: Path, make_spec: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path)
    spec = make_spec("sleepy", max_concurrency=1)
    running = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0.3})))
    await asyncio.sleep(0)  # the task takes its slot before its first real wait
    waiting = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0})))
    await asyncio.sleep(0)
    assert not waiting.done()
    await executor.stop(grace=5.0)
    assert (await waiting).status == "throttled"
    assert (await running).status == "ok"

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from triggerfish.runtime.base import (
    FunctionSpec,
    InvocationRequest,
    InvocationResult,
    PoolStats,
)
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]
Eventually = Callable[..., Awaitable[bool]]
Gone = Callable[[int], bool]


def pid_of(result: InvocationResult) -> int:
    assert result.status == "ok", result.error_document()
    return int(orjson.loads(result.result or b"")["pid"])


def stats_of(executor: ProcessExecutor, spec: FunctionSpec) -> PoolStats:
    (stats,) = [
        s for s in executor.pool_stats() if (s.function, s.version) == (spec.function, spec.version)
    ]
    return stats


def most_at_once(results: list[InvocationResult]) -> int:
    """The largest number of handlers that ran at the same moment."""
    edges = sorted(
        [(r.started_at, 1) for r in results]
        + [(r.started_at + r.duration_ms / 1000, -1) for r in results],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_a_burst_scales_from_zero_to_n_and_back_to_zero_after_idle_ttl(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    eventually: Eventually,
    gone: Gone,
) -> None:
    spec = make_spec("sleepy", max_concurrency=4, idle_ttl=0.3)
    burst = await asyncio.gather(
        *(executor.invoke(spec, make_request({"seconds": 0.5})) for _ in range(4))
    )
    pids = {pid_of(result) for result in burst}
    assert len(pids) == 4
    assert all(result.cold_start for result in burst)
    stats = stats_of(executor, spec)
    assert (stats.idle, stats.busy, stats.cold_starts) == (4, 0, 4)
    assert await eventually(lambda: stats_of(executor, spec).idle == 0)
    stats = stats_of(executor, spec)
    assert (stats.busy, stats.starting, stats.reserved_mb, stats.reaped) == (0, 0, 0, 4)
    assert await eventually(lambda: all(gone(pid) for pid in pids))
    assert executor.memory_reserved_mb == 0


async def test_min_warm_keeps_environments_whose_first_invocations_are_not_cold(
    tmp_path: Path, make_spec: Spec, make_request: Request, eventually: Eventually
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, idle_ttl=0.1)
    await executor.start()
    try:
        spec = make_spec("snap_free_inspect", code_dir=make_spec("inspect").code_dir, min_warm=2)
        await executor.provision(spec)
        assert await eventually(lambda: stats_of(executor, spec).idle == 2)
        # Stays: nothing happens to wait for; provisioned ones outlive several idle_ttl.
        await asyncio.sleep(0.5)
        results = await asyncio.gather(
            *(executor.invoke(spec, make_request({"seconds": 0.2})) for _ in range(2))
        )
        assert [result.cold_start for result in results] == [False, False]
        assert len({pid_of(result) for result in results}) == 2
        kinds = {orjson.loads(result.result or b"")["init_type"] for result in results}
        assert kinds == {"provisioned-concurrency"}
        stats = stats_of(executor, spec)
        assert (stats.prewarmed, stats.cold_starts, stats.idle) == (2, 0, 2)
    finally:
        await executor.stop(grace=1.0)


async def test_the_memory_budget_bounds_environments_and_events_wait(
    tmp_path: Path, make_spec: Spec, make_request: Request, eventually: Eventually
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, memory_capacity=256)
    await executor.start()
    try:
        spec = make_spec("sleepy", memory=128, max_concurrency=6)  # 6 x 128 MB > 256 MB
        burst = [
            asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0.3})))
            for _ in range(5)
        ]

        def all_placed() -> bool:
            return any(s.busy + s.starting + s.waiting == 5 for s in executor.pool_stats())

        assert await eventually(all_placed)
        assert executor.memory_reserved_mb == 256
        stats = stats_of(executor, spec)
        assert stats.busy + stats.starting == 2
        assert stats.waiting == 3
        impatient = await executor.invoke(spec, make_request({"seconds": 0}), wait=0.05)
        assert impatient.status == "throttled"
        assert "memory" in (impatient.error_message or "")
        results = await asyncio.gather(*burst)
        assert all(result.status == "ok" for result in results)
        assert most_at_once(results) <= 2
        assert len({pid_of(result) for result in results}) == 2
    finally:
        await executor.stop(grace=1.0)


async def test_idle_environments_of_other_functions_make_room(
    tmp_path: Path, make_spec: Spec, make_request: Request, eventually: Eventually, gone: Gone
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, memory_capacity=256)
    await executor.start()
    try:
        big = make_spec("counter", function="big", memory=256)
        first = pid_of(await executor.invoke(big, make_request({})))
        small = make_spec("counter", function="small", memory=128)
        assert (await executor.invoke(small, make_request({}), wait=0)).status == "ok"
        assert await eventually(lambda: gone(first))
        assert stats_of(executor, big).idle == 0
    finally:
        await executor.stop(grace=1.0)


async def test_a_function_larger_than_the_node_fails_with_a_clear_error(
    tmp_path: Path, make_spec: Spec, make_request: Request
) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, memory_capacity=200)
    await executor.start()
    try:
        result = await executor.invoke(make_spec("counter", memory=256), make_request({}))
        assert result.status == "error"
        assert result.error_type == "Runtime.InsufficientMemory"
        assert "200 MB" in (result.error_message or "")
    finally:
        await executor.stop(grace=1.0)


async def test_an_environment_is_recycled_after_max_invocations(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("counter", max_invocations=2)
    results = [await executor.invoke(spec, make_request({})) for _ in range(3)]
    pids = [pid_of(result) for result in results]
    assert pids[0] == pids[1] != pids[2]
    assert results[2].cold_start
    assert orjson.loads(results[2].result or b"")["calls"] == 1
    assert stats_of(executor, spec).recycled == 1


async def test_an_environment_whose_memory_grew_near_its_size_is_recycled(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("memory_hog", memory=128)
    small = await executor.invoke(spec, make_request({"mb": 1}))
    grown = await executor.invoke(spec, make_request({"mb": 100}))
    assert grown.status == "ok"
    after = await executor.invoke(spec, make_request({"mb": 1}))
    assert after.status == "ok"
    assert small.cold_start
    assert not grown.cold_start
    assert after.cold_start
    assert stats_of(executor, spec).recycled == 1


async def test_free_slots_counts_the_memory_budget(tmp_path: Path, make_spec: Spec) -> None:
    executor = ProcessExecutor(work_dir=tmp_path, memory_capacity=384)
    spec = make_spec("counter", memory=128, max_concurrency=10)
    assert executor.free_slots(spec) == 3
    assert executor.memory_capacity_mb == 384

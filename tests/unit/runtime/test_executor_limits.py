from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest

from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]
Eventually = Callable[..., Awaitable[bool]]


async def test_timeout_kills_the_environment_and_the_next_call_starts_a_new_one(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", timeout=0.5)
    first = await executor.invoke(spec, make_request({"seconds": 0}))
    late = await executor.invoke(spec, make_request({"seconds": 30}))
    assert late.status == "timeout"
    assert late.error_message == "Task timed out after 0.50 seconds"
    assert "going to sleep" in late.logs
    assert "Status: timeout" in late.logs
    again = await executor.invoke(spec, make_request({"seconds": 0}))
    assert again.status == "ok"
    assert again.cold_start
    assert orjson.loads(again.result or b"")["pid"] != orjson.loads(first.result or b"")["pid"]


async def test_memory_error_is_reported_as_oom_and_the_environment_replaced(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("memory_hog", memory=128)
    fits = await executor.invoke(spec, make_request({"mb": 16}))
    assert fits.status == "ok"
    hog = await executor.invoke(spec, make_request({"mb": 1024}))
    assert hog.status == "oom"
    assert hog.error_type == "Runtime.OutOfMemory"
    assert "128 MB" in (hog.error_message or "")
    after = await executor.invoke(spec, make_request({"mb": 1}))
    assert after.status == "ok"
    assert after.cold_start


async def test_peak_memory_is_reported_per_invocation(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("memory_hog", memory=256)
    big = await executor.invoke(spec, make_request({"mb": 64}))
    small = await executor.invoke(spec, make_request({"mb": 1}))
    assert big.max_memory_used_mb >= 64
    assert small.max_memory_used_mb < big.max_memory_used_mb
    assert f"Max Memory Used: {big.max_memory_used_mb} MB" in big.logs


async def test_exit_in_the_handler_is_a_crash_and_the_next_call_works(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("crash")
    crashed = await executor.invoke(spec, make_request({"how": "exit", "code": 3}))
    assert crashed.status == "crashed"
    assert crashed.error_message == "Runtime exited with error: exit status 3"
    assert "about to go" in crashed.logs
    after = await executor.invoke(spec, make_request({"how": "none"}))
    assert after.status == "ok"
    assert after.cold_start


async def test_segfault_is_a_crash_naming_the_signal(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("crash")
    crashed = await executor.invoke(spec, make_request({"how": "segfault"}))
    assert crashed.status == "crashed"
    assert "SIGSEGV" in (crashed.error_message or "")
    assert "Segmentation fault" in crashed.logs  # the fault handler's report
    after = await executor.invoke(spec, make_request({"how": "none"}))
    assert after.status == "ok"


async def test_remaining_time_counts_down_from_the_timeout(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    result = await executor.invoke(make_spec("context_fields", timeout=2.0), make_request({}))
    remaining = orjson.loads(result.result or b"")["remaining"]
    assert 0 < remaining <= 2000


async def test_cancelled_caller_does_not_leave_a_busy_environment_behind(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, eventually: Eventually
) -> None:
    spec = make_spec("sleepy", max_concurrency=1)
    abandoned = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 30})))
    # Cancelled once its environment runs it.
    assert await eventually(lambda: any(s.busy == 1 for s in executor.pool_stats()))
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert executor.free_slots(spec) == 1
    result = await executor.invoke(spec, make_request({"seconds": 0}), wait=0)
    assert result.status == "ok"
    assert result.cold_start


@pytest.mark.parametrize(("hold", "words"), [(0, "memory"), (5, "Runtime exited")])
async def test_resident_memory_outside_the_rlimit_still_ends_as_oom(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, hold: float, words: str
) -> None:
    # hold=0: caught by the environment's peak check or the executor's watch, whichever
    # comes first; hold=5: the executor's watch kills the environment.
    spec = make_spec("shared_hog", memory=128, timeout=20.0)
    result = await executor.invoke(spec, make_request({"mb": 200, "hold": hold}))
    assert result.status == "oom"
    assert result.error_type == "Runtime.OutOfMemory"
    assert words in (result.error_message or "")
    after = await executor.invoke(spec, make_request({"mb": 1}))
    assert after.status == "ok"

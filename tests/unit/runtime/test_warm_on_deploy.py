"""An environment started ahead of the first call (a deploy's, ``ProcessExecutor.warm``):
the call that follows finds it, even while it is still starting, instead of paying a
cold start of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]
Eventually = Callable[..., Awaitable[bool]]


def stats_of(executor: ProcessExecutor, spec: FunctionSpec) -> tuple[int, int, int]:
    """(environments, cold starts, started ahead) of ``spec``'s pool."""
    (stats,) = [s for s in executor.pool_stats() if s.version == spec.version]
    return stats.idle + stats.busy + stats.starting, stats.cold_starts, stats.prewarmed


async def test_a_call_made_while_the_warm_environment_starts_waits_for_it(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("counter")
    assert executor.warm(spec)
    assert not executor.warm(spec)  # one is starting: no second
    result = await executor.invoke(spec, make_request({}), wait=5)
    assert result.status == "ok"
    assert not result.cold_start
    assert result.init_duration_ms is None  # its init ran before the call
    assert stats_of(executor, spec) == (1, 0, 1)


async def test_the_first_call_after_the_environment_is_up_is_warm(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, eventually: Eventually
) -> None:
    spec = make_spec("counter")
    executor.warm(spec)
    assert await eventually(lambda: [s.idle for s in executor.pool_stats()] == [1])
    result = await executor.invoke(spec, make_request({}))
    assert not result.cold_start
    assert stats_of(executor, spec) == (1, 0, 1)


async def test_a_handler_that_cannot_start_fails_its_first_call_as_a_cold_start_would(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("import_error")
    executor.warm(spec)
    result = await executor.invoke(spec, make_request({}), wait=5)
    assert result.status == "error"
    assert result.error_type == "Runtime.ImportModuleError"

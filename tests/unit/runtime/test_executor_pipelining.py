"""Waiting invocations are handed to an environment as soon as it answers, and are also
queued behind a short running call, to start there by a time: limits, crashes and
emitted events stay per invocation; an invocation queued behind one that killed its
environment, or that did not start in time, runs elsewhere instead of failing, and a
synchronous caller is still refused at the end of its wait."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from triggerfish.runtime import executor as executor_module
from triggerfish.runtime import pool as pool_module
from triggerfish.runtime.base import FunctionSpec, InvocationRequest, InvocationResult
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.worker import Worker

Spec = Callable[..., FunctionSpec]
Request = Callable[..., InvocationRequest]
Eventually = Callable[..., Awaitable[bool]]


def _pid(result: InvocationResult) -> int:
    assert result.status == "ok", result.error_document()
    pid: int = orjson.loads(result.result or b"")["pid"]
    return pid


def _handed_over(executor: ProcessExecutor, spec: FunctionSpec) -> int:
    (stats,) = [s for s in executor.pool_stats() if s.function == spec.function]
    return stats.handed_over


async def _warm(executor: ProcessExecutor, spec: FunctionSpec, payload: Any, make: Request) -> int:
    """One quick call, so the environment is warm and known to answer fast."""
    return _pid(await executor.invoke(spec, make(payload)))


@pytest.fixture
def quick_is_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quick call (of 0 s) counts as short, so that its environment queues the next
    behind the one it runs after it, however loaded the machine: a loaded machine can
    take longer than ``PIPELINE_WITHIN`` (5 ms) over it. A tenth of a second stays far
    below the slow calls (0.5 s and more) of the tests that use this."""
    monkeypatch.setattr(executor_module, "PIPELINE_WITHIN", 0.1)


async def _around(
    executor: ProcessExecutor, spec: FunctionSpec, make: Request, payload: Any, *, quick: Any
) -> tuple[InvocationResult, InvocationResult, InvocationResult]:
    """``payload`` between two ``quick`` calls, all three at once on one warm environment:
    the last is queued behind ``payload`` once the first has answered."""
    return await asyncio.gather(
        executor.invoke(spec, make(quick)),
        executor.invoke(spec, make(payload)),
        executor.invoke(spec, make(quick)),
    )


@pytest.mark.usefixtures("quick_is_short")
async def test_a_crash_fails_only_the_running_invocation_the_queued_one_runs_elsewhere(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("crash", max_concurrency=1)
    warm = await _warm(executor, spec, {"how": "fine"}, make_request)
    quick, crashing, queued = await _around(
        executor, spec, make_request, {"how": "exit", "code": 7}, quick={"how": "fine"}
    )
    assert _pid(quick) == warm
    assert crashing.status == "crashed"
    assert "exit status 7" in (crashing.error_message or "")
    assert _pid(queued) != warm
    assert queued.cold_start
    assert _handed_over(executor, spec) >= 2


@pytest.mark.usefixtures("quick_is_short")
async def test_a_timeout_fails_only_the_running_invocation(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", timeout=0.5, max_concurrency=1)
    warm = await _warm(executor, spec, {"seconds": 0}, make_request)
    quick, late, queued = await _around(
        executor, spec, make_request, {"seconds": 30}, quick={"seconds": 0}
    )
    assert _pid(quick) == warm
    assert late.status == "timeout"
    assert late.error_message == "Task timed out after 0.50 seconds"
    assert _pid(queued) != warm
    assert _handed_over(executor, spec) >= 2


@pytest.mark.usefixtures("quick_is_short")
async def test_a_queued_invocation_gets_its_whole_timeout_from_when_it_starts(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", timeout=1.0, max_concurrency=1)
    warm = await _warm(executor, spec, {"seconds": 0}, make_request)
    results = await asyncio.gather(
        executor.invoke(spec, make_request({"seconds": 0})),
        executor.invoke(spec, make_request({"seconds": 0.6})),
        executor.invoke(spec, make_request({"seconds": 0.6})),
    )
    # Run one after the other in the same environment, 1.2 s in all: each within its
    # own second.
    assert [_pid(result) for result in results] == [warm] * 3
    assert _handed_over(executor, spec) >= 2


@pytest.mark.usefixtures("quick_is_short")
async def test_out_of_memory_fails_only_the_running_invocation(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("memory_hog", memory=128, max_concurrency=1)
    assert (await executor.invoke(spec, make_request({"mb": 1}))).status == "ok"
    quick, hog, queued = await _around(executor, spec, make_request, {"mb": 1024}, quick={"mb": 1})
    assert quick.status == "ok"
    assert hog.status == "oom"
    assert queued.status == "ok", queued.error_document()
    assert queued.cold_start
    assert _handed_over(executor, spec) >= 2


async def test_emitted_events_stay_with_their_invocation(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("emitter", max_concurrency=1)
    await executor.invoke(spec, make_request({}))
    results = await asyncio.gather(*(executor.invoke(spec, make_request({})) for _ in range(6)))
    for result in results:
        assert result.status == "ok"
        assert [(e.topic, e.type) for e in result.emitted] == [
            ("orders", "order.created"),
            ("audit", "order.seen"),
        ]
    assert _handed_over(executor, spec) >= 5


async def test_concurrency_limit_holds_while_invocations_are_handed_over(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", max_concurrency=2)
    results = await asyncio.gather(
        *(executor.invoke(spec, make_request({"seconds": 0.001})) for _ in range(40))
    )
    assert len({_pid(result) for result in results}) <= 2
    (stats,) = executor.pool_stats()
    assert stats.busy == 0
    assert stats.idle <= 2
    assert stats.invocations == 40


@pytest.mark.usefixtures("quick_is_short")
async def test_a_synchronous_caller_with_a_short_wait_is_queued_behind_a_running_call(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    monkeypatch: pytest.MonkeyPatch,
    eventually: Eventually,
) -> None:
    # A start-by window wide enough for the slow call ahead; the caller's wait (1 s,
    # the default) is far below the function's timeout (10 s).
    monkeypatch.setattr(pool_module, "QUEUED_START_WITHIN", 2.0)
    # Whether the environment was running a call at each hand-over: seen from here, the
    # slow call may well have ended by the time a loaded machine lets this test look.
    running_at_hand_over: list[bool] = []
    hand_over = pool_module.Pool.hand_over

    def recording(pool: pool_module.Pool, worker: Worker) -> bool:
        running = worker.in_flight > 0
        handed = hand_over(pool, worker)
        if handed:
            running_at_hand_over.append(running)
        return handed

    monkeypatch.setattr(pool_module.Pool, "hand_over", recording)
    spec = make_spec("sleepy", max_concurrency=1)
    warm = await _warm(executor, spec, {"seconds": 0}, make_request)
    calls = [
        asyncio.create_task(executor.invoke(spec, make_request(payload), wait=1.0))
        for payload in ({"seconds": 0}, {"seconds": 0.5}, {"seconds": 0})
    ]
    # The quick first call answered; the slow one runs and the last is already queued
    # behind it in the environment.
    assert await eventually(lambda: _handed_over(executor, spec) >= 2)
    assert _handed_over(executor, spec) == 2
    assert running_at_hand_over[-1]  # the last was handed over while a call ran there
    results = await asyncio.gather(*calls)
    assert [_pid(result) for result in results] == [warm] * 3


async def _pids(
    executor: ProcessExecutor, spec: FunctionSpec, make: Request, payload: Any
) -> set[int]:
    """Starts two environments (calls of ``payload`` at once) and returns their pids."""
    both = await asyncio.gather(*(executor.invoke(spec, make(payload)) for _ in range(2)))
    return {_pid(result) for result in both}


async def test_one_queued_behind_a_slow_call_is_taken_back_and_runs_where_a_slot_frees(
    executor: ProcessExecutor,
    make_spec: Spec,
    make_request: Request,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A call of 0.1 s counts as short here, so that the quick call is still running when
    # the others wait, however loaded the machine, and its environment still queues
    # behind the slow one after it.
    monkeypatch.setattr(executor_module, "PIPELINE_WITHIN", 1.0)
    spec = make_spec("sleepy", max_concurrency=2)
    assert len(await _pids(executor, spec, make_request, {"seconds": 0.2})) == 2
    loop = asyncio.get_running_loop()
    began = loop.time()
    medium = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0.3})))
    quick = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0.1})))
    await asyncio.sleep(0)
    # Both environments are busy: these wait. When the quick call answers, its
    # environment starts the slow one and takes its share of the others, the next one,
    # behind it.
    slow = asyncio.create_task(executor.invoke(spec, make_request({"seconds": 3})))
    await asyncio.sleep(0)
    last, other = (
        asyncio.create_task(executor.invoke(spec, make_request({"seconds": 0}), wait=5))
        for _ in range(2)
    )
    result = await last
    took = loop.time() - began
    # It did not wait for the slow call: it ran where the 0.3 s call ended.
    assert _pid(result) == _pid(await medium)
    assert took < 2.0
    assert not slow.done()
    assert _pid(await other) == _pid(result)
    # The slow call, the last one twice (behind it, then where a slot came free), the
    # other one.
    assert _handed_over(executor, spec) == 4
    assert _pid(await quick) == _pid(await slow)


async def test_one_queued_behind_a_slow_call_is_refused_at_its_wait_and_never_runs(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    spec = make_spec("ledger", max_concurrency=1)

    def request(seconds: float) -> InvocationRequest:
        return make_request({"seconds": seconds, "ledger": str(ledger)})

    warm = _pid(await executor.invoke(spec, request(0)))
    loop = asyncio.get_running_loop()
    requests = [request(0), request(1.0), request(0)]
    waits = [5.0, 5.0, 0.2]
    began = loop.time()
    tasks = [
        asyncio.create_task(executor.invoke(spec, each, wait=wait))
        for each, wait in zip(requests, waits, strict=True)
    ]
    refused = await tasks[2]
    assert refused.status == "throttled"
    assert loop.time() - began < 0.8  # at its wait, not when the slow call ended
    assert [_pid(await task) for task in tasks[:2]] == [warm, warm]
    assert _pid(await executor.invoke(spec, request(0))) == warm
    ran = ledger.read_text().split()
    assert requests[2].request_id not in ran
    assert ran[1:3] == [requests[0].request_id, requests[1].request_id]
    (stats,) = executor.pool_stats()
    assert (stats.busy, stats.idle, stats.waiting) == (0, 1, 0)


@pytest.mark.both_loops
async def test_under_tight_waits_every_invocation_runs_once_or_is_refused(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    spec = make_spec("ledger", max_concurrency=2)
    chance = random.Random(7)
    requests = [
        make_request({"seconds": chance.choice([0, 0, 0.002, 0.02, 0.06]), "ledger": str(ledger)})
        for _ in range(240)
    ]

    async def call(index: int) -> InvocationResult:
        # Stays: it spreads the arrivals over about a second, as a stream of events comes.
        await asyncio.sleep(index * 0.004)
        return await executor.invoke(spec, requests[index], wait=chance.uniform(0.01, 0.12))

    results = await asyncio.gather(*(call(index) for index in range(len(requests))))
    ran = ledger.read_text().split()
    assert len(ran) == len(set(ran))
    for each, result in zip(requests, results, strict=True):
        assert result.status in ("ok", "throttled"), result.error_document()
        assert (result.status == "ok") == (each.request_id in ran)
    # About twice what two environments can run: both outcomes are many.
    statuses = [result.status for result in results]
    assert statuses.count("ok") > len(requests) // 4
    assert statuses.count("throttled") > 0
    (stats,) = executor.pool_stats()
    assert (stats.busy, stats.waiting) == (0, 0)
    assert _pid(await executor.invoke(spec, make_request({"seconds": 0, "ledger": str(ledger)})))


async def test_a_synchronous_caller_queued_behind_a_call_that_times_out_runs_in_time(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", timeout=1.0, max_concurrency=1)
    warm = await _warm(executor, spec, {"seconds": 0}, make_request)
    began = asyncio.get_running_loop().time()
    quick, hung, queued = await asyncio.gather(
        *(
            executor.invoke(spec, make_request(payload), wait=5)
            for payload in ({"seconds": 0}, {"seconds": 3}, {"seconds": 0})
        )
    )
    took = asyncio.get_running_loop().time() - began
    assert _pid(quick) == warm
    assert hung.status == "timeout"
    # Its environment was killed with the call ahead of it: it ran in a new one, within
    # its wait.
    assert _pid(queued) != warm
    assert took < 5


async def test_waiting_synchronous_callers_are_handed_over_as_the_environment_finishes(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request
) -> None:
    spec = make_spec("sleepy", max_concurrency=1)
    warm = await _warm(executor, spec, {"seconds": 0}, make_request)
    results = await asyncio.gather(
        *(executor.invoke(spec, make_request({"seconds": 0.01}), wait=10) for _ in range(10))
    )
    assert {_pid(result) for result in results} == {warm}
    # Each caller after the first got the environment in the callback of an answer
    # before its own (calls of 10 ms are not short enough to queue behind).
    assert _handed_over(executor, spec) == 9
    (stats,) = executor.pool_stats()
    assert (stats.busy, stats.idle, stats.invocations) == (0, 1, 11)


@pytest.mark.usefixtures("quick_is_short")
async def test_stopping_answers_a_queued_invocation_throttled_so_it_is_retried(
    executor: ProcessExecutor, make_spec: Spec, make_request: Request, eventually: Eventually
) -> None:
    spec = make_spec("sleepy", max_concurrency=1)
    await _warm(executor, spec, {"seconds": 0}, make_request)
    calls = asyncio.gather(
        executor.invoke(spec, make_request({"seconds": 0})),
        executor.invoke(spec, make_request({"seconds": 30})),
        executor.invoke(spec, make_request({"seconds": 0})),
    )
    # The quick call answered: the slow one runs and the last is queued behind it.
    assert await eventually(lambda: _handed_over(executor, spec) == 2)
    async with asyncio.timeout(10):
        await executor.stop(grace=0.2)
        quick, running, queued = await calls
    assert quick.status == "ok"
    assert running.status != "ok"
    assert queued.status == "throttled"
    assert "stopping" in (queued.error_message or "")

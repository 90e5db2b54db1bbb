"""Callers waiting for a concurrency slot: each gives up at its own deadline, however
many wait, and one that gets a slot first is never refused afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from triggerfish.runtime.base import FunctionSpec
from triggerfish.runtime.pool import Pool


def _full_pool(max_concurrency: int = 1) -> Pool:
    pool = Pool(
        FunctionSpec(
            function="f",
            version="v1",
            code_dir=Path("/nonexistent"),
            handler="main.handler",
            max_concurrency=max_concurrency,
        )
    )
    for _ in range(max_concurrency):
        assert pool.try_acquire()
    return pool


async def _timed(pool: Pool, wait: float | None) -> tuple[bool | object, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await pool.acquire(wait)
    return outcome, loop.time() - started


async def test_each_waiter_gives_up_at_its_own_deadline() -> None:
    pool = _full_pool()
    late = asyncio.create_task(_timed(pool, 0.30))
    await asyncio.sleep(0)
    early = asyncio.create_task(_timed(pool, 0.05))  # comes later, ends sooner
    middle = asyncio.create_task(_timed(pool, 0.15))
    results = await asyncio.gather(early, middle, late)
    for (outcome, waited), wait in zip(results, (0.05, 0.15, 0.30), strict=True):
        assert outcome is False
        assert wait - 0.005 <= waited < wait + 0.5
    assert pool.running == 1
    assert pool.queueable == 0


async def test_a_waiter_given_a_slot_is_not_refused_when_its_deadline_passes(
    eventually: Callable[..., Awaitable[bool]],
) -> None:
    pool = _full_pool()
    first = asyncio.create_task(pool.acquire(0.05))
    second = asyncio.create_task(pool.acquire(0.10))
    assert await eventually(lambda: pool.stats().waiting == 2, within=1.0)
    pool.release()  # the slot goes to the first waiter
    assert await first is True
    assert await second is False  # the other still gives up on time
    await asyncio.sleep(0.1)  # the deadline timer runs again and finds nothing to do
    assert pool.running == 1
    pool.release()
    assert pool.running == 0


async def test_waiters_without_a_deadline_wait_until_a_slot_frees() -> None:
    pool = _full_pool()
    patient = asyncio.create_task(pool.acquire(None))
    hasty = asyncio.create_task(pool.acquire(0.02))
    assert await hasty is False
    # Nothing to wait for: the patient waiter must still be waiting a while later.
    await asyncio.sleep(0.05)
    assert not patient.done()
    pool.release()
    assert await patient is True


async def test_a_waiter_cancelled_before_its_deadline_leaves_the_others_on_time() -> None:
    pool = _full_pool()
    cancelled = asyncio.create_task(pool.acquire(0.02))
    kept = asyncio.create_task(_timed(pool, 0.08))
    await asyncio.sleep(0)
    cancelled.cancel()
    outcome, waited = await kept
    assert outcome is False
    assert 0.075 <= waited < 0.6
    assert pool.running == 1

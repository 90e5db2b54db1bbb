"""An invocation queued in an environment behind a running one, with a start-by time:
it runs there if it starts in time; once that time has passed it is taken back while
the call ahead still runs, or skipped by the environment if the executor could not
look in time. Either way it runs once or not at all, and the environment goes on."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from triggerfish.runtime.base import FunctionSpec
from triggerfish.runtime.environment import WorkerOptions
from triggerfish.runtime.protocol import Done, Invoke, Ready, Skipped
from triggerfish.runtime.worker import NOT_STARTED, Worker

Spec = Callable[..., FunctionSpec]
Eventually = Callable[..., Awaitable[bool]]

pytestmark = pytest.mark.both_loops


@pytest.fixture
async def worker(tmp_path: Path, make_spec: Spec) -> AsyncIterator[Worker]:
    options = WorkerOptions(
        python=sys.executable, log_limit=64 * 1024, work_dir=tmp_path, init_timeout=10.0
    )
    started = await Worker.start(make_spec("ledger"), options)
    assert isinstance(await started.initialise(), Ready)
    yield started
    await started.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.txt"


def _invoke(ledger: Path, seconds: float = 0.0) -> Invoke:
    payload = orjson.dumps({"seconds": seconds, "ledger": str(ledger)})
    return Invoke(str(uuid.uuid4()), payload, "arn:aws:lambda:us-east-1:0:function:ledger")


def _ran(ledger: Path) -> list[str]:
    return ledger.read_text().split() if ledger.exists() else []


async def test_a_queued_invocation_that_starts_in_time_runs(worker: Worker, ledger: Path) -> None:
    first, second = _invoke(ledger, 0.05), _invoke(ledger)
    ahead = worker.submit(first)
    queued = worker.submit(second, start_by=time.monotonic() + 5)
    assert isinstance((await worker.result(ahead)).outcome, Done)
    assert isinstance((await worker.result(queued)).outcome, Done)
    assert _ran(ledger) == [first.request_id, second.request_id]


async def test_one_still_queued_at_its_start_by_is_taken_back_and_never_runs(
    worker: Worker, ledger: Path
) -> None:
    slow, late, after = _invoke(ledger, 0.4), _invoke(ledger), _invoke(ledger)
    ahead = worker.submit(slow)
    queued = worker.submit(late, start_by=time.monotonic() + 0.05)
    began = time.monotonic()
    outcome = (await worker.result(queued)).outcome
    # Given back long before the call ahead ends, so it can run elsewhere.
    assert outcome is NOT_STARTED
    assert time.monotonic() - began < 0.3
    assert worker.in_flight == 1
    assert isinstance((await worker.result(ahead)).outcome, Done)
    # The environment's answer for the call taken back is not mistaken for the next one's.
    answer = await worker.call(after)
    assert isinstance(answer.outcome, Done)
    assert _ran(ledger) == [slow.request_id, after.request_id]
    assert worker.invocations == 2


async def test_one_the_executor_could_not_take_back_is_skipped_by_the_environment(
    worker: Worker, ledger: Path
) -> None:
    slow, late, after = _invoke(ledger, 0.2), _invoke(ledger), _invoke(ledger)
    ahead = worker.submit(slow)
    queued = worker.submit(late, start_by=time.monotonic() + 0.05)
    # The executor's thread is held past the start-by and the end of the call ahead, as
    # by a long pause: the environment reaches the queued call late and skips it.
    time.sleep(0.4)  # noqa: ASYNC251 (the point: the event loop cannot run)
    assert isinstance((await worker.result(ahead)).outcome, Done)
    answer = await worker.result(queued)
    assert isinstance(answer.outcome, Skipped)
    assert answer.outcome.request_id == late.request_id
    assert isinstance((await worker.call(after)).outcome, Done)
    assert _ran(ledger) == [slow.request_id, after.request_id]


async def test_calls_taken_back_one_behind_the_other_are_all_accounted_for(
    worker: Worker, ledger: Path
) -> None:
    slow = _invoke(ledger, 0.3)
    later = [_invoke(ledger) for _ in range(3)]
    ahead = worker.submit(slow)
    soon = time.monotonic() + 0.05
    taken = [worker.submit(message, start_by=soon) for message in later[:2]]
    kept = worker.submit(later[2], start_by=time.monotonic() + 10)
    for call in taken:
        assert (await worker.result(call)).outcome is NOT_STARTED
    assert isinstance((await worker.result(ahead)).outcome, Done)
    assert isinstance((await worker.result(kept)).outcome, Done)
    assert _ran(ledger) == [slow.request_id, later[2].request_id]


async def test_a_skip_after_a_call_taken_back_from_an_otherwise_idle_environment_is_seen(
    worker: Worker, ledger: Path, eventually: Eventually
) -> None:
    # Taken back behind a call that then ends: the environment's answer for it arrives
    # when nothing else is in flight.
    slow, late = _invoke(ledger, 0.2), _invoke(ledger)
    ahead = worker.submit(slow)
    taken = worker.submit(late, start_by=time.monotonic() + 0.05)
    assert (await worker.result(taken)).outcome is NOT_STARTED
    assert isinstance((await worker.result(ahead)).outcome, Done)
    # Its answer for the call taken back arrives while nothing is in flight; only the
    # count of answers it owes shows when.
    assert await eventually(lambda: worker._owed_skips == 0, within=5.0)
    # Later, a call the environment skips on its own is answered as skipped.
    slow, late = _invoke(ledger, 0.2), _invoke(ledger)
    ahead = worker.submit(slow)
    queued = worker.submit(late, start_by=time.monotonic() + 0.05)
    time.sleep(0.4)  # noqa: ASYNC251 (the event loop cannot take it back in time)
    assert isinstance((await worker.result(ahead)).outcome, Done)
    async with asyncio.timeout(2):
        answer = await worker.result(queued)
    assert isinstance(answer.outcome, Skipped)
    assert late.request_id not in _ran(ledger)

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop

from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.zygote import process_gone

FUNCTIONS = Path(__file__).resolve().parents[2] / "fixtures" / "functions"


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests marked ``both_loops`` run once on each event loop; the others on
    asyncio's."""
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[ProcessExecutor]:
    runner = ProcessExecutor(work_dir=tmp_path)
    await runner.start()
    yield runner
    await runner.stop(grace=1.0)


@pytest.fixture
def make_spec() -> Callable[..., FunctionSpec]:
    def build(case: str, **options: Any) -> FunctionSpec:
        options.setdefault("handler", "main.handler")
        options.setdefault("timeout", 10.0)
        return FunctionSpec(
            function=options.pop("function", case),
            version=options.pop("version", "v1"),
            code_dir=options.pop("code_dir", FUNCTIONS / case),
            **options,
        )

    return build


def _request(payload: Any = None, **options: Any) -> InvocationRequest:
    return InvocationRequest(request_id=str(uuid.uuid4()), payload=orjson.dumps(payload), **options)


@pytest.fixture
def make_request() -> Callable[..., InvocationRequest]:
    """Builds an invocation request whose payload is ``payload`` as JSON."""
    return _request


@pytest.fixture
def functions() -> Path:
    return FUNCTIONS


Check = Callable[[], bool]


async def _eventually(check: Check, within: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture
def eventually() -> Callable[..., Awaitable[bool]]:
    """``await eventually(check, within=10.0)``: polls ``check`` until it holds or the
    time runs out; returns the last answer."""
    return _eventually


@pytest.fixture
def gone() -> Callable[[int], bool]:
    """``gone(pid)``: no process ``pid`` runs any more (a zombie counts as gone)."""
    return process_gone

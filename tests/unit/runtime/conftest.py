from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor

FUNCTIONS = Path(__file__).resolve().parents[2] / "fixtures" / "functions"


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

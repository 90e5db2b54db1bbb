"""Every runtime gives an invocation without a trace the X-Ray header that
``runtime.tracing.trace_header`` makes from its request id: the environment makes it,
and the Node.js runtime's copy of the rule gives the same header."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from support.results import ok_json
from triggerfish.ids import new_id
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.tracing import trace_header

# The root's first part is the second the header was made, which may differ by one.
SECONDS = re.compile(r"^Root=1-([0-9a-f]{8})-")
IDS = (new_id, lambda: str(uuid.uuid4()))  # Triggerfish's own ids, and a caller's


def _same_header(seen: str, request_id: str) -> None:
    expected = trace_header(request_id)
    seen_match, expected_match = SECONDS.match(seen), SECONDS.match(expected)
    assert seen_match is not None, seen
    assert expected_match is not None, expected
    assert abs(int(seen_match.group(1), 16) - int(expected_match.group(1), 16)) <= 1
    assert seen[seen_match.end() :] == expected[expected_match.end() :]


def _request(request_id: str, payload: Any) -> InvocationRequest:
    return InvocationRequest(request_id=request_id, payload=orjson.dumps(payload))


@pytest.mark.parametrize("make_id", IDS, ids=["triggerfish-id", "uuid"])
async def test_python_environments_make_the_header(
    executor: ProcessExecutor, make_spec: Callable[..., FunctionSpec], make_id: Any
) -> None:
    spec = make_spec("context_fields")
    for _ in range(2):  # the second on a warm environment replaces the first's header
        request_id = make_id()
        seen = ok_json(await executor.invoke(spec, _request(request_id, {})))
        _same_header(seen["env"]["_X_AMZN_TRACE_ID"], request_id)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.parametrize("make_id", IDS, ids=["triggerfish-id", "uuid"])
async def test_nodejs_environments_follow_the_same_rule(
    executor: ProcessExecutor, make_spec: Callable[..., FunctionSpec], make_id: Any
) -> None:
    spec = make_spec("node_kit", handler="async.handler", runtime="nodejs")
    for _ in range(2):
        request_id = make_id()
        seen = ok_json(await executor.invoke(spec, _request(request_id, {"action": "context"})))
        _same_header(seen["env"]["_X_AMZN_TRACE_ID"], request_id)


@pytest.mark.parametrize("make_id", IDS, ids=["triggerfish-id", "uuid"])
async def test_provided_runtimes_get_it_in_the_next_answer(
    executor: ProcessExecutor, make_spec: Callable[..., FunctionSpec], make_id: Any
) -> None:
    spec = make_spec("provided_kit", handler="main.handler", runtime="provided.al2023")
    request_id = make_id()
    seen = ok_json(await executor.invoke(spec, _request(request_id, {"action": "headers"})))
    _same_header(seen["headers"]["Lambda-Runtime-Trace-Id"], request_id)

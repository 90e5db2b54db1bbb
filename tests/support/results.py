"""Reading executor results in tests."""

from __future__ import annotations

from typing import Any

import orjson

from triggerfish.runtime.base import InvocationResult


def ok_json(result: InvocationResult) -> Any:
    """The handler's JSON result, after checking the invocation succeeded."""
    assert result.status == "ok", (result.error_document(), result.logs)
    return orjson.loads(result.result or b"")

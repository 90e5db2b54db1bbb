"""On-success and on-failure destinations: the invocation record and where it goes.

They apply to asynchronous invocations (``_invoke.<function>``) and to trigger
deliveries. After a successful invocation the runner publishes (through ``Emitter.succeeded``) a
``triggerfish.invocation.success`` record to the function's ``on_success`` target
before it acknowledges the event; when an event is given up (dead-lettered after its
retries, or too old) a ``triggerfish.invocation.failure`` record goes to
``on_failure`` (``Emitter.failed``) before the acknowledgement too. The record has the shape of AWS
Lambda's destination record (``version``, ``timestamp``, ``requestContext``,
``requestPayload``, ``responseContext``, ``responsePayload``), as the event's data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import orjson

from triggerfish.functions.brokers import Destinations
from triggerfish.runtime.base import FunctionSpec, InvocationResult

SUCCESS_TYPE = "triggerfish.invocation.success"
FAILURE_TYPE = "triggerfish.invocation.failure"
Condition = Literal["Success", "RetriesExhausted", "EventAgeExceeded"]
DestinationsOf = Callable[[FunctionSpec], Destinations | None]


def _json(blob: bytes | None) -> Any:
    if blob is None:
        return None
    try:
        return orjson.loads(blob)
    except orjson.JSONDecodeError:
        return blob.decode("utf-8", "replace")


def invocation_record(
    spec: FunctionSpec,
    result: InvocationResult,
    *,
    condition: Condition,
    payload: bytes,
    attempt: int,
) -> dict[str, Any]:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": spec.version}
    if condition == "Success":
        body = _json(result.result)
    else:
        response["functionError"] = "Unhandled"
        body = result.error_document()
    return {
        "version": "1.0",
        "timestamp": stamp,
        "requestContext": {
            "requestId": result.request_id,
            "functionArn": f"{spec.arn}:{spec.version}",
            "condition": condition,
            "approximateInvokeCount": attempt,
        },
        "requestPayload": _json(payload),
        "responseContext": response,
        "responsePayload": body,
    }


def condition_of(reason: str) -> Condition:
    """The record's condition for ``RetryPolicy.gives_up``'s reason."""
    return "EventAgeExceeded" if reason.startswith("event older") else "RetriesExhausted"

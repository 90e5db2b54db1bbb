"""Direct invocation of a function: synchronous (no bus, the caller sees the outcome)
and asynchronous (the payload goes through the bus with the function's async policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from triggerfish.bus.base import Bus, PublishResult
from triggerfish.dispatch.dispatcher import invoke_topic
from triggerfish.dispatch.emitter import Emitter
from triggerfish.dispatch.runner import Resolver
from triggerfish.errors import (
    PayloadTooLargeError,
    ThrottledError,
    TriggerfishError,
    ValidationError,
)
from triggerfish.events.create import now_rfc3339
from triggerfish.events.depth import MAX_DEPTH, check_payload_depth
from triggerfish.events.model import Event
from triggerfish.ids import new_id
from triggerfish.observe.recorder import Recorder
from triggerfish.runtime.base import Executor, InvocationRequest, InvocationResult


def check_payload(payload: bytes, limit: int, mode: str, depth: int = MAX_DEPTH) -> None:
    if len(payload) > limit:
        raise PayloadTooLargeError(
            f"{mode} invocation payload is {len(payload):,} bytes; the limit is {limit:,} bytes"
        )
    check_payload_depth(payload, depth)
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            f"the invocation payload must be a JSON document: {exc}", field="payload"
        ) from None


class Invoker:
    def __init__(
        self,
        bus: Bus,
        executor: Executor,
        *,
        resolve: Resolver,
        recorder: Recorder,
        emitter: Emitter,
        throttle_wait: float = 1.0,
        sync_limit: int = 6 * 1024 * 1024,
        async_limit: int = 1024 * 1024,
        json_depth_limit: int = MAX_DEPTH,
    ) -> None:
        self._bus = bus
        self._executor = executor
        self._resolve = resolve
        self._recorder = recorder
        self._emitter = emitter
        self._throttle_wait = throttle_wait
        self._sync_limit = sync_limit
        self._async_limit = async_limit
        self._depth = json_depth_limit

    async def invoke(
        self,
        function: str,
        payload: bytes,
        *,
        qualifier: str = "live",
        client_context: Mapping[str, Any] | None = None,
    ) -> InvocationResult:
        """Run the function now and return its outcome; raises ThrottledError when it
        stays at its concurrency limit for longer than ``throttle_wait``.
        ``client_context``: the caller's, for the handler's ``context.client_context``."""
        check_payload(payload, self._sync_limit, "synchronous", self._depth)
        spec = await self._resolve(function, qualifier)
        request = InvocationRequest(
            request_id=new_id(), payload=payload, client_context=client_context
        )
        result = await self._executor.invoke(spec, request, wait=self._throttle_wait)
        if result.status == "ok" and result.emitted:
            try:
                await self._emitter.publish(spec.function, result.emitted, None)
            except TriggerfishError as exc:
                result.status = "error"
                result.error_type = "EmitError"
                result.error_message = str(exc)
        self._recorder.record(
            spec, result, trigger=None, event_ids=(), attempt=1, request_bytes=len(payload)
        )
        if result.status == "throttled":
            raise ThrottledError(
                f"function {function!r} is at its concurrency limit "
                f"({spec.max_concurrency}); retry later or raise max_concurrency",
                retry_after=1.0,
            )
        return result

    async def invoke_async(
        self, function: str, payload: bytes, *, qualifier: str = "live"
    ) -> PublishResult:
        """Accept the payload durably for the function; it runs with the async policy."""
        check_payload(payload, self._async_limit, "asynchronous", self._depth)
        if qualifier != "live":
            raise ValidationError(
                "asynchronous invocations run the 'live' alias; invoke synchronously to "
                f"run {qualifier!r}",
                field="qualifier",
            )
        await self._resolve(function, qualifier)  # NotFoundError for an unknown function
        event = Event(
            id=new_id(),
            source=f"triggerfish://invoke/{function}",
            type="triggerfish.invoke",
            time=now_rfc3339(),
            datacontenttype="application/json",
            data=payload,
        )
        (stored,) = await self._bus.publish(invoke_topic(function), [event])
        return stored

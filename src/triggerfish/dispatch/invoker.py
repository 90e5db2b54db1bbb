"""Direct invocation of a function: synchronous (no bus, the caller sees the outcome)
and asynchronous (the payload goes through the bus with the function's async policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from triggerfish.bus.base import Bus, PublishResult
from triggerfish.dispatch import chains
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
from triggerfish.observe.tracing import IngestTrace, InvocationTrace, SpanContext, Tracer
from triggerfish.runtime.base import Executor, InvocationRequest, InvocationResult
from triggerfish.store.records import ChainEvent


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
        tracer: Tracer | None = None,
    ) -> None:
        self._bus = bus
        self._tracer = tracer
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
        trace: Mapping[str, str] | None = None,
    ) -> InvocationResult:
        """Run the function now and return its outcome; raises ThrottledError when it
        stays at its concurrency limit for longer than ``throttle_wait``.
        ``client_context``: the caller's, for the handler's ``context.client_context``.
        ``trace``: the request's headers, whose ``traceparent`` the invocation continues
        when tracing is on."""
        check_payload(payload, self._sync_limit, "synchronous", self._depth)
        spec = await self._resolve(function, qualifier)
        traced: InvocationTrace | None = None
        if self._tracer is not None:
            parent = SpanContext.parse(*_trace_headers(trace))
            traced = self._tracer.invocation(spec.function, spec.version, parent, kind="server")
        request = InvocationRequest(
            request_id=new_id(),
            payload=payload,
            client_context=client_context,
            trace_id=None if traced is None else traced.traceparent,
            trace_state=None if traced is None else traced.handler.state,
        )
        result = await self._executor.invoke(spec, request, wait=self._throttle_wait)
        if traced is not None:
            traced.finished(result)
            traced.emitting(result)
        chain: list[ChainEvent] = []
        if result.status == "ok" and result.emitted:
            try:
                events = await self._emitter.publish(spec.function, result.emitted, None)
                published = zip((r.topic for r in result.emitted), events, strict=True)
                chain = chains.emitted(result.request_id, published)
            except TriggerfishError as exc:
                result.status = "error"
                result.error_type = "EmitError"
                result.error_message = str(exc)
            if traced is not None:
                traced.published(error=result.error_message)
        self._recorder.record(
            spec,
            result,
            trigger=None,
            event_ids=(),
            attempt=1,
            request_bytes=len(payload),
            # A direct invocation that emits starts the chain of what it emitted.
            correlation=chain[0].correlation if chain else None,
            events=chain,
        )
        if result.status == "throttled":
            raise ThrottledError(
                f"function {function!r} is at its concurrency limit "
                f"({spec.max_concurrency}); retry later or raise max_concurrency",
                retry_after=1.0,
            )
        return result

    async def invoke_async(
        self,
        function: str,
        payload: bytes,
        *,
        qualifier: str = "live",
        trace: Mapping[str, str] | None = None,
    ) -> PublishResult:
        """Accept the payload durably for the function; it runs with the async policy.
        ``trace``: as for ``invoke``."""
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
        if self._tracer is None:
            (stored,) = await self._bus.publish(invoke_topic(function), [event])
            return stored
        ingest = IngestTrace(
            self._tracer, f"invoke {function} (async)", trace or {}, {"faas.name": function}
        )
        try:
            (stored,) = await self._bus.publish(invoke_topic(function), ingest.stamp([event]))
        except Exception as exc:
            ingest.finished(500, error=f"{type(exc).__name__}: {exc}")
            raise
        ingest.finished(202)
        return stored


def _trace_headers(headers: Mapping[str, str] | None) -> tuple[str | None, str | None]:
    if headers is None:
        return None, None
    return headers.get("traceparent"), headers.get("tracestate")

"""The ``Context`` a handler receives as its second argument.

It carries the fields of AWS Lambda's Python context object, so handlers written for
Lambda run unchanged, plus Triggerfish's ``emit`` to publish new events and the
triggering CloudEvent when the payload is one. A ``Context`` built without an emitter
(in a unit test of a handler, say) keeps what was emitted in ``context.emitted``.

``emit`` called inside a handler and ``current_context()`` find the context of the
invocation running in this environment (a context variable, set per invocation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from triggerfish.errors import ValidationError
from triggerfish.runtime.base import EmitRequest

Emitter = Callable[[EmitRequest], None]

_current: ContextVar[Context | None] = ContextVar("triggerfish_context", default=None)


class CognitoIdentity:
    """Lambda's ``context.identity``; both fields are ``None`` outside mobile SDK calls."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity_id: str | None = None, pool_id: str | None = None) -> None:
        self.cognito_identity_id = identity_id
        self.cognito_identity_pool_id = pool_id


class Client:
    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.installation_id = fields.get("installation_id")
        self.app_title = fields.get("app_title")
        self.app_version_name = fields.get("app_version_name")
        self.app_version_code = fields.get("app_version_code")
        self.app_package_name = fields.get("app_package_name")


class ClientContext:
    """Lambda's ``context.client_context``, built from the caller's client context."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, Mapping) else None
        self.custom: Any = fields.get("custom")
        self.env: Any = fields.get("env")


def _is_cloud_event(payload: Any) -> bool:
    return (
        type(payload) is dict
        and "specversion" in payload
        and "id" in payload
        and "source" in payload
        and "type" in payload
    )


class Context:
    """What a handler knows about the invocation it serves."""

    __slots__ = (
        "_deadline",
        "_emitter",
        "aws_request_id",
        "client_context",
        "emitted",
        "event",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "trace_context",
    )

    def __init__(
        self,
        *,
        aws_request_id: str,
        function_name: str,
        function_version: str = "$LATEST",
        memory_limit_in_mb: int = 128,
        invoked_function_arn: str = "",
        log_group_name: str = "",
        log_stream_name: str = "",
        deadline: float | None = None,
        client_context: Mapping[str, Any] | None = None,
        trace_context: Mapping[str, str] | None = None,
        payload: Any = None,
        emitter: Emitter | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.function_version = function_version
        # Lambda gives the memory size as a string; so do we, for code that parses it.
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.invoked_function_arn = invoked_function_arn
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity = CognitoIdentity()
        self.client_context = ClientContext(client_context) if client_context else None
        #: The W3C trace context of this invocation's handler span (``traceparent``, and
        #: ``tracestate`` when there is one): ``opentelemetry.propagate.extract`` takes it.
        self.trace_context: dict[str, str] = dict(trace_context) if trace_context else {}
        #: The triggering CloudEvent (structured JSON form) when the payload is one.
        self.event: dict[str, Any] | None = payload if _is_cloud_event(payload) else None
        self._deadline = deadline  # time.monotonic() value; None means no limit
        self._emitter = emitter
        self.emitted: list[EmitRequest] = []

    def get_remaining_time_in_millis(self) -> int:
        if self._deadline is None:
            return 2**31 - 1
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    @property
    def event_id(self) -> str | None:
        return self._event_attribute("id")

    @property
    def event_source(self) -> str | None:
        return self._event_attribute("source")

    @property
    def event_type(self) -> str | None:
        return self._event_attribute("type")

    @property
    def event_subject(self) -> str | None:
        return self._event_attribute("subject")

    def _event_attribute(self, name: str) -> str | None:
        if self.event is None:
            return None
        value = self.event.get(name)
        return value if isinstance(value, str) else None

    def emit(
        self,
        topic: str,
        type: str,
        data: Any = None,
        *,
        source: str | None = None,
        subject: str | None = None,
        id: str | None = None,
        extensions: Mapping[str, str | int | bool] | None = None,
    ) -> None:
        """Publish an event on ``topic`` once this invocation succeeds. ``topic`` is an
        internal topic or ``"<broker>:<address>"`` for a broker under ``brokers:``.

        When the invocation was triggered by a CloudEvent, the new event carries
        ``causationid`` (that event's id) and ``correlationid`` (the chain's first id)
        unless ``extensions`` sets them.
        """
        if not isinstance(topic, str) or not topic:
            raise ValidationError("emit needs a topic name", field="topic")
        if not isinstance(type, str) or not type:
            raise ValidationError("emit needs an event type", field="type")
        merged: dict[str, str | int | bool] = {}
        if self.event is not None:
            cause = self.event.get("id")
            if isinstance(cause, str):
                merged["causationid"] = cause
                chain = self.event.get("correlationid")
                merged["correlationid"] = chain if isinstance(chain, str) else cause
        if extensions:
            for name, value in extensions.items():
                if not isinstance(value, str | int | bool):
                    raise ValidationError(
                        f"extension {name!r} must be a string, integer or boolean",
                        field="extensions",
                    )
                merged[name] = value
        request = EmitRequest(
            topic=topic,
            type=type,
            data=data,
            source=source,
            subject=subject,
            id=id,
            extensions=merged,
        )
        if self._emitter is None:
            self.emitted.append(request)
        else:
            self._emitter(request)


def current_context() -> Context | None:
    """The context of the invocation running here, or ``None`` outside a handler."""
    return _current.get()


def set_current_context(context: Context | None) -> None:
    """Used by the runtime around each invocation."""
    _current.set(context)


def emit(
    topic: str,
    type: str,
    data: Any = None,
    *,
    source: str | None = None,
    subject: str | None = None,
    id: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
) -> None:
    """``context.emit`` for code that does not hold the context (helpers, libraries)."""
    context = _current.get()
    if context is None:
        raise ValidationError("emit() called outside of a running handler")
    context.emit(topic, type, data, source=source, subject=subject, id=id, extensions=extensions)

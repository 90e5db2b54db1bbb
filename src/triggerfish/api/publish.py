"""Event ingest, ``POST /v1/topics/{topic}/events``, in plain ASGI.

The FastAPI route in ``api.topics`` documents the operation and serves what this path
leaves to it (a missing or refused token, which it explains); both answer through
``publish_reply``, so the two paths give the same reply. ``NativePublish.accepts``
decides from the headers alone, before the body is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from triggerfish.api.problems import error_status
from triggerfish.api.raw import RawRequest, Reply, path_part, token_allows
from triggerfish.errors import ValidationError
from triggerfish.events.http import body_too_large, parse_http
from triggerfish.observe.tracing import IngestTrace

if TYPE_CHECKING:
    from triggerfish.node import Node

PREFIX = "/v1/topics/"
SUFFIX = "/events"


def topic_of(path: str) -> str | None:
    """The topic of an ingest path, or None for any other path."""
    return path_part(path, PREFIX, SUFFIX)


async def publish_reply(node: Node, topic: str, headers: Mapping[str, str], body: bytes) -> Reply:
    """Store the events of one request on ``topic``: 202 once they are durable."""
    if node.tracer is None:
        return await _publish(node, topic, headers, body, None)
    trace = IngestTrace(
        node.tracer,
        f"publish {topic}",
        headers,
        {"http.route": "/v1/topics/{topic}/events", "messaging.destination.name": topic},
    )
    try:
        reply = await _publish(node, topic, headers, body, trace)
    except Exception as exc:
        trace.finished(error_status(exc), error=f"{type(exc).__name__}: {exc}")
        raise
    trace.finished(reply.status)
    return reply


async def _publish(
    node: Node, topic: str, headers: Mapping[str, str], body: bytes, trace: IngestTrace | None
) -> Reply:
    settings = node.settings
    node.disk.admit()  # no new event while the disk is low (observe/disk.py)
    events = parse_http(
        headers, body, max_size=settings.async_payload_limit, max_depth=settings.json_depth_limit
    )
    if not events:
        raise ValidationError("the batch holds no event", field="body")
    if trace is not None:
        events = trace.stamp(events)
    results = await node.control.topics.publish(topic, events)
    duplicates = sum(1 for r in results if r.duplicate)
    document = {
        "topic": topic,
        "accepted": [
            {"id": r.id, "source": r.source, "offset": r.offset, "duplicate": r.duplicate}
            for r in results
        ],
        "stored": len(results) - duplicates,
        "duplicates": duplicates,
    }
    return Reply(202, orjson.dumps(document))


class NativePublish:
    """Serves event ingest on ``node`` without the router."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def accepts(self, request: RawRequest, topic: str) -> bool:
        """True when this path serves the request: a token that may publish to it."""
        return token_allows(self._node.tokens, request, "publish", topic)

    async def handle(self, topic: str, request: RawRequest) -> Reply:
        limit = self._node.settings.async_payload_limit
        body = await request.body(limit, lambda: body_too_large(limit))
        return await publish_reply(self._node, topic, request.headers, body)

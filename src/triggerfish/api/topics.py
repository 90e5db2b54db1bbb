"""Topics and event ingest: ``/v1/topics``.

``POST /v1/topics/{topic}/events`` takes CloudEvents in binary, structured or batch
mode (chosen by Content-Type, as the HTTP binding says) and answers 202 once they
are durable on the bus.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from triggerfish.api.deps import node_of, require
from triggerfish.api.publish import publish_reply
from triggerfish.bus.base import GroupInfo, StoredEvent, TopicInfo
from triggerfish.bus.names import check_topic_name
from triggerfish.errors import ValidationError

router = APIRouter(prefix="/v1/topics", tags=["topics"])


class TopicBody(BaseModel):
    retention: float | None = Field(default=None, description="seconds; null keeps forever")


class ReplayBody(BaseModel):
    trigger: str = Field(description="the trigger (consumer group) to replay into")
    offset: int | None = Field(default=None, description="first offset to deliver again")
    since: float | None = Field(default=None, description="unix time: events published since")


def topic_json(info: TopicInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "retention": info.retention,
        "first_offset": info.first_offset,
        "last_offset": info.last_offset,
        "count": info.count,
    }


def group_json(info: GroupInfo) -> dict[str, Any]:
    return {
        "topic": info.topic,
        "trigger": info.group,
        "cursor": info.cursor,
        "backlog": info.backlog,
        "in_flight": info.in_flight,
        "waiting_retry": info.waiting_retry,
    }


def stored_json(item: StoredEvent) -> dict[str, Any]:
    return {"offset": item.offset, "published_at": item.published_at, "event": item.event.to_dict()}


@router.post("/{topic}/events", status_code=202, dependencies=[Depends(require("publish"))])
async def publish_events(topic: str, request: Request) -> Response:
    """Served by ``api.fastpath`` in front of the application when it has it (see
    ``api.publish``); this route documents the operation and serves it otherwise."""
    reply = await publish_reply(node_of(request), topic, request.headers, await request.body())
    return reply.response()


@router.get("", dependencies=[Depends(require("read"))])
async def list_topics(request: Request, internal: bool = False) -> dict[str, Any]:
    infos = await node_of(request).bus.topics()
    return {"topics": [topic_json(t) for t in infos if internal or not t.name.startswith("_")]}


@router.put("/{topic}", dependencies=[Depends(require("deploy"))])
async def put_topic(topic: str, body: TopicBody, request: Request) -> dict[str, Any]:
    check_topic_name(topic)
    node = node_of(request)
    await node.bus.create_topic(topic, retention=body.retention)
    return topic_json(await node.bus.topic(topic))


@router.get("/{topic}", dependencies=[Depends(require("read"))])
async def get_topic(topic: str, request: Request) -> dict[str, Any]:
    bus = node_of(request).bus
    info = await bus.topic(topic)
    return {**topic_json(info), "triggers": [group_json(g) for g in await bus.groups(topic)]}


@router.delete("/{topic}", status_code=204, dependencies=[Depends(require("deploy"))])
async def delete_topic(topic: str, request: Request) -> None:
    await node_of(request).bus.delete_topic(topic)


@router.get("/{topic}/events", dependencies=[Depends(require("read"))])
async def read_events(
    topic: str, request: Request, after: int = 0, since: float | None = None, limit: int = 100
) -> dict[str, Any]:
    items = await node_of(request).bus.read(topic, after=after, since=since, limit=min(limit, 1000))
    return {"topic": topic, "events": [stored_json(i) for i in items]}


@router.post("/{topic}/replay", dependencies=[Depends(require("deploy"))])
async def replay(topic: str, body: ReplayBody, request: Request) -> dict[str, Any]:
    if (body.offset is None) == (body.since is None):
        raise ValidationError("give exactly one of 'offset' or 'since'", field="offset")
    count = await node_of(request).replay(topic, body.trigger, offset=body.offset, since=body.since)
    return {"topic": topic, "trigger": body.trigger, "requeued": count}

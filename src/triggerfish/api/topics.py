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

from triggerfish.api.bounds import Duration, Limit, Offset, UnixTime
from triggerfish.api.deps import control_of, node_of, path, require
from triggerfish.api.publish import publish_reply
from triggerfish.control import GroupInfo, StoredEvent, TopicInfo
from triggerfish.errors import ValidationError

router = APIRouter(prefix="/v1/topics", tags=["topics"])


class TopicBody(BaseModel):
    retention: Duration | None = Field(default=None, description="seconds; null keeps forever")


class ReplayBody(BaseModel):
    trigger: str = Field(description="the trigger (consumer group) to replay into")
    offset: Offset | None = Field(default=None, description="first offset to deliver again")
    since: UnixTime | None = Field(default=None, description="unix time: events published since")


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


@router.post(
    "/{topic}/events", status_code=202, dependencies=[Depends(require("publish", path("topic")))]
)
async def publish_events(topic: str, request: Request) -> Response:
    """Served by ``api.fastpath`` in front of the application when it has it (see
    ``api.publish``); this route documents the operation and serves it otherwise."""
    reply = await publish_reply(node_of(request), topic, request.headers, await request.body())
    return reply.response()


@router.get("", dependencies=[Depends(require("read"))])
async def list_topics(request: Request, internal: bool = False) -> dict[str, Any]:
    infos = await control_of(request).topics.all()
    return {"topics": [topic_json(t) for t in infos if internal or not t.name.startswith("_")]}


@router.put("/{topic}", dependencies=[Depends(require("deploy"))])
async def put_topic(topic: str, body: TopicBody, request: Request) -> dict[str, Any]:
    topics = control_of(request).topics
    await topics.create(topic, retention=body.retention)
    return topic_json(await topics.info(topic))


@router.get("/{topic}", dependencies=[Depends(require("read"))])
async def get_topic(topic: str, request: Request) -> dict[str, Any]:
    topics = control_of(request).topics
    info = await topics.info(topic)
    return {
        **topic_json(info),
        "rate": await topics.rate(info),
        "triggers": [group_json(g) for g in await topics.groups(topic)],
    }


@router.delete("/{topic}", status_code=204, dependencies=[Depends(require("deploy"))])
async def delete_topic(topic: str, request: Request) -> None:
    await control_of(request).topics.delete(topic)


@router.get("/{topic}/events", dependencies=[Depends(require("read"))])
async def read_events(
    topic: str,
    request: Request,
    after: Offset = 0,
    since: UnixTime | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    topics = control_of(request).topics
    items = await topics.read(topic, after=after, since=since, limit=min(limit, 1000))
    return {"topic": topic, "events": [stored_json(i) for i in items]}


@router.post("/{topic}/replay", dependencies=[Depends(require("deploy"))])
async def replay(topic: str, body: ReplayBody, request: Request) -> dict[str, Any]:
    if (body.offset is None) == (body.since is None):
        raise ValidationError("give exactly one of 'offset' or 'since'", field="offset")
    topics = control_of(request).topics
    count = await topics.replay(topic, body.trigger, offset=body.offset, since=body.since)
    return {"topic": topic, "trigger": body.trigger, "requeued": count}

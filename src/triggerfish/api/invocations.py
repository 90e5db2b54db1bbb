"""Invocation records and dead-letter topics: ``/v1/invocations``, ``/v1/dlq``."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request

from triggerfish.api.bounds import Limit, UnixTime
from triggerfish.api.deps import control_of, require
from triggerfish.api.topics import stored_json
from triggerfish.control import DeadLetters, InvocationRecord

router = APIRouter(prefix="/v1", tags=["invocations"])


DETAIL_FIELDS = ("stack_trace", "logs", "request_bytes")


def invocation_json(record: InvocationRecord, *, full: bool = False) -> dict[str, Any]:
    """The record as JSON; ``full`` adds logs, stack trace and the result."""
    out = dataclasses.asdict(record)
    del out["events"]  # the chain's, shown by /v1/chains
    result = out.pop("result")
    if not full:
        for name in DETAIL_FIELDS:
            del out[name]
    elif result is not None:
        out["result_base64"] = base64.b64encode(result).decode()
    return out


def dead_letters_json(found: DeadLetters) -> dict[str, Any]:
    return {
        "topic": found.topic,
        "pending": found.pending,
        "events": [stored_json(item) for item in found.events],
    }


@router.get("/invocations", dependencies=[Depends(require("read"))])
async def list_invocations(
    request: Request,
    function: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    since: UnixTime | None = None,
    until: UnixTime | None = None,
    limit: Limit = 100,
    before: str | None = None,
    after: str | None = None,
    logs: bool = False,
) -> dict[str, Any]:
    """Newest first, paged with ``before``; or oldest first from ``after`` (``after=0``
    starts at the beginning), for following new invocations as they come."""
    page = min(limit, 1000)
    records = await control_of(request).invocations.search(
        function=function,
        status=status,
        trigger=trigger,
        since=since,
        until=until,
        limit=page,
        before=before,
        after=after,
    )
    following = after is not None
    if following:
        next_cursor = records[-1].recorded_id if records else after
    else:
        next_cursor = records[-1].id if len(records) == page else None
    return {
        "invocations": [invocation_json(r, full=logs) for r in records],
        "next": next_cursor,
    }


@router.get("/invocations/{invocation_id}", dependencies=[Depends(require("read"))])
async def get_invocation(invocation_id: str, request: Request) -> dict[str, Any]:
    record = await control_of(request).invocations.get(invocation_id)
    return invocation_json(record, full=True)


@router.get("/dlq", dependencies=[Depends(require("read"))])
async def list_dead_letters(
    request: Request, topic: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    topics = control_of(request).topics
    found = await topics.dead_letters(topic, limit=min(limit, 1000))
    return {"dead_letters": [dead_letters_json(item) for item in found]}


@router.post("/dlq/{topic}/redrive", dependencies=[Depends(require("deploy"))])
async def redrive(
    topic: str, request: Request, limit: Limit = 1000, event: str | None = None
) -> dict[str, Any]:
    """Every waiting event of the topic (up to ``limit``), or with ``event`` the first
    waiting event of that id alone."""
    topics = control_of(request).topics
    if event is None:
        redriven, skipped = await topics.redrive(topic, limit=limit)
        return {"topic": topic, "redriven": redriven, "skipped": skipped}
    redriven, skipped = await topics.redrive_event(topic, event)
    return {"topic": topic, "event": event, "redriven": redriven, "skipped": skipped}

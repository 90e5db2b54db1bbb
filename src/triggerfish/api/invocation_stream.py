"""``GET /v1/invocations/stream``: invocations as they end, as server-sent events.

The stream follows the store's invocation records with the ``after`` cursor of
``GET /v1/invocations`` (each record's ``recorded_id``), so it shows the invocations of
every node sharing the store, not only this one's. Records reach the store within the
recorder's flush interval (0.2 s), and the stream looks every ``POLL`` seconds, so an
invocation shows within about half a second of its end.

Each event is ``event: invocation`` with the record as JSON (without logs and result),
and its ``recorded_id`` as the event id: a client that reconnects with
``Last-Event-ID`` (as ``EventSource`` does), or with ``after``, misses nothing. Without
either, the stream starts with the invocations recorded from now on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from triggerfish.api.deps import control_of, require
from triggerfish.api.invocations import invocation_json
from triggerfish.control import Control
from triggerfish.ids import new_id

router = APIRouter(prefix="/v1", tags=["invocations"])

POLL = 0.25  # seconds between looks at the store
PAGE = 100
KEEPALIVE = 15.0  # seconds of quiet before a comment line keeps proxies from closing it


async def follow(
    control: Control, cursor: str, *, function: str | None, status: str | None
) -> AsyncIterator[bytes]:
    """The stream's lines: a reconnection delay, then each record as it is written."""
    yield b"retry: 1000\n\n"
    quiet_since = time.monotonic()
    while True:
        records = await control.invocations.search(
            function=function, status=status, after=cursor, limit=PAGE
        )
        for record in records:
            cursor = record.recorded_id
            data = orjson.dumps(invocation_json(record))
            yield b"id: %s\nevent: invocation\ndata: %s\n\n" % (cursor.encode(), data)
        if records:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE:
            quiet_since = time.monotonic()
            yield b": keep-alive\n\n"
        if len(records) < PAGE:
            await anyio.sleep(POLL)


@router.get(
    "/invocations/stream",
    dependencies=[Depends(require("read"))],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_invocations(
    request: Request,
    function: str | None = None,
    status: str | None = None,
    after: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events, one per invocation recorded after ``after`` (or the
    ``Last-Event-ID`` header), or from now on; filtered by function and status."""
    cursor = after or last_event_id or new_id()
    lines = follow(control_of(request), cursor, function=function, status=status)
    return StreamingResponse(
        lines,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

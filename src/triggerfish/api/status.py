"""``GET /v1/status``: this node, its uptime, the disk each part of its data uses and
what retention removes (``control/status.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from triggerfish.api.deps import node_of, require

router = APIRouter(prefix="/v1", tags=["status"])


@router.get("/status", dependencies=[Depends(require("read"))])
async def status(request: Request) -> dict[str, Any]:
    """The node's id, version and uptime; per part of its data (bus, store, buckets,
    artifacts, environments) the bytes it uses on this node's disk (null when kept on a
    server), the free space of the data directory's filesystem; and retention: its
    settings, its last pass and what it removed by kind since the node started."""
    return await node_of(request).status.snapshot()

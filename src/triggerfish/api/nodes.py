"""``GET /v1/nodes``: the nodes sharing this node's store, as their heartbeats say."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request

from triggerfish.api.deps import node_of, require

router = APIRouter(prefix="/v1", tags=["nodes"])


@router.get("/nodes", dependencies=[Depends(require("read"))])
async def list_nodes(request: Request) -> dict[str, Any]:
    """Every node with its address, version, state (``running``, ``draining``,
    ``stopped``, or ``gone`` when its heartbeat stopped), heartbeat age and load."""
    node = node_of(request)
    views = await node.membership.view()
    return {"this": node.membership.node_id, "nodes": [asdict(v) for v in views]}

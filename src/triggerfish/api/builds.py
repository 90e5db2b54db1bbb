"""``GET /v1/functions/{name}/build``: the environment build of a function and its log.

While a deploy installs dependencies this shows the build running, with its log so far
(page on with ``offset``, the ``next_offset`` of the previous answer). Afterwards it
shows the last build of the function, or, after a restart, the environment of the live
version and the log kept from when it was built.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from triggerfish.api.bounds import Offset
from triggerfish.api.deps import node_of, require

router = APIRouter(prefix="/v1", tags=["functions"])


@router.get("/functions/{name}/build", dependencies=[Depends(require("read"))])
async def get_build(name: str, request: Request, offset: Offset = 0) -> dict[str, Any]:
    node = node_of(request)
    builder = node.builder
    out: dict[str, Any] = {"function": name, "status": "none", "key": None}
    state = builder.state(name)
    if state is not None:
        out.update(
            status=state.status,
            key=state.key,
            started_at=state.started_at,
            finished_at=state.finished_at,
            error=state.error,
        )
    else:
        live = await node.control.functions.version(name)
        wanted = builder.requirements(node.artifacts.path(live.digest))
        if wanted is not None:
            built = builder.is_built(wanted.key)
            out.update(status="built" if built else "missing", key=wanted.key)
    if out["key"] is not None:
        key = out["key"]
        out["python"] = str(builder.env_path(key) / "bin" / "python")
        out["log"], out["next_offset"] = builder.read_log(key, offset)
    else:
        out["log"], out["next_offset"] = "", offset
    return out

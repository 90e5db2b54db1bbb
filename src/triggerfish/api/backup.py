"""``POST /v1/backup``: a consistent copy of this node, written on the server's machine.

The body names an absolute folder (absent or empty) on the machine the server runs on;
the answer lists what was copied, with sizes and checksums, and what was not (the
databases of a PostgreSQL store or a NATS bus, which their own tools back up). Admin
scope only: a backup holds every secret the node keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from triggerfish.api.deps import node_of, require
from triggerfish.security.permissions import ADMIN

router = APIRouter(prefix="/v1", tags=["backup"])


class BackupRequest(BaseModel):
    path: str = Field(min_length=1, description="an absolute folder on the server's machine")


@router.post("/backup", dependencies=[Depends(require(ADMIN))])
async def backup(body: BackupRequest, request: Request) -> dict[str, Any]:
    """Copy the node's databases (SQLite's online backup), code packages, bucket
    objects and keys into ``path`` while it keeps serving; writes ``manifest.json``."""
    report = await node_of(request).backups.run(Path(body.path))
    return {**report.as_dict(), "size": report.size}

"""``GET /v1/costs``: requests, GB-seconds and their estimated price, per function."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from triggerfish.api.bounds import UnixTime
from triggerfish.api.deps import node_of, require
from triggerfish.errors import ValidationError

router = APIRouter(prefix="/v1", tags=["costs"])


@router.get("/costs", dependencies=[Depends(require("read"))])
async def costs(
    request: Request,
    function: str | None = None,
    since: Annotated[UnixTime | None, Query(description="Unix time; from this request on")] = None,
    until: Annotated[UnixTime | None, Query(description="Unix time; before this request")] = None,
) -> dict[str, Any]:
    """Sums of the invocations requested in ``[since, until)``; every time when omitted."""
    if since is not None and until is not None and until < since:
        raise ValidationError("until must not be before since", field="until")
    report = await node_of(request).costs.report(function=function, since=since, until=until)
    return report.to_json()

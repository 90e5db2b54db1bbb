"""``GET /v1/costs``: requests, GB-seconds and their estimated price, per function, and
per version that ran with ``by_version``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from triggerfish.api.bounds import UnixTime
from triggerfish.api.deps import node_of, require
from triggerfish.errors import ValidationError

router = APIRouter(prefix="/v1", tags=["costs"])

MAX_PERIODS = 200


@router.get("/costs", dependencies=[Depends(require("read"))])
async def costs(
    request: Request,
    function: str | None = None,
    since: Annotated[UnixTime | None, Query(description="Unix time; from this request on")] = None,
    until: Annotated[UnixTime | None, Query(description="Unix time; before this request")] = None,
    periods: Annotated[
        int | None,
        Query(ge=1, le=MAX_PERIODS, description="also cut [since, until) in this many periods"),
    ] = None,
    by_version: Annotated[
        bool, Query(description="also the sums of each version that ran, per function")
    ] = False,
) -> dict[str, Any]:
    """Sums of the invocations requested in ``[since, until)``; every time when omitted.
    With ``periods``, ``periods`` holds the sums of each equal part of the span, oldest
    first (a chart's bars), from one read of the records."""
    if since is not None and until is not None and until < since:
        raise ValidationError("until must not be before since", field="until")
    if periods is not None and (since is None or until is None):
        raise ValidationError("periods needs both since and until", field="periods")
    report = await node_of(request).costs.report(
        function=function, since=since, until=until, periods=periods, by_version=by_version
    )
    return report.to_json()

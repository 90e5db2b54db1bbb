"""``GET /v1/whoami``: the credential that sent the request, and what it may do.

A client (the web console) asks before it offers an action, with ``can`` naming each
``action`` or ``action:resource`` it wants to know about, so it can hide what the API
would refuse; the API still checks every request itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from triggerfish.api.deps import principal_of
from triggerfish.security.permissions import ANY, Principal

router = APIRouter(prefix="/v1", tags=["tokens"])


@router.get("/whoami")
async def whoami(
    principal: Annotated[Principal, Depends(principal_of)],
    can: Annotated[list[str] | None, Query(description="action or action:resource")] = None,
) -> dict[str, Any]:
    """Any valid credential may ask about itself."""
    answers = {}
    for asked in can or []:
        action, _, resource = asked.partition(":")
        answers[asked] = principal.allows(action, resource or ANY)
    return {
        "kind": principal.kind,
        "id": principal.id,
        "name": principal.name,
        "label": principal.label,
        "permissions": list(principal.policy.texts),
        "expires_at": principal.expires_at,
        "can": answers,
    }

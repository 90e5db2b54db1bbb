"""The idempotency records of functions: ``/v1/idempotency`` (what ``@idempotent``
calls, see docs/idempotency.md).

Only a function's own access key (``AWS_ACCESS_KEY_ID`` in its environment) may call
these routes, signed with AWS Signature Version 4, and the key's function is the
scope of every key: no function reads or settles another's records, and no manifest
needs to grant anything for it.

- ``POST /v1/idempotency/claim`` ``{"key", "lease"}``: ``{"status": "claimed",
  "token", "expires_in"}`` when this delivery now holds the key for ``lease``
  seconds; ``{"status": "completed", "result", "expires_in"}`` when a delivery
  completed it; ``{"status": "in_progress", "expires_in"}`` while another holds it.
- ``POST /v1/idempotency/complete`` ``{"key", "token", "result", "expires"}``: keeps
  the result for ``expires`` seconds; 409 when the claim had ended.
- ``POST /v1/idempotency/release`` ``{"key", "token"}``: drops the claim, so the next
  delivery runs; ``{"released": false}`` when it had ended.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from triggerfish.api.deps import node_of, principal_of
from triggerfish.control.idempotency import MAX_EXPIRES, MAX_LEASE, ClaimAnswer
from triggerfish.errors import PermissionDeniedError
from triggerfish.store.idempotency import MAX_KEY_LENGTH

router = APIRouter(prefix="/v1/idempotency", tags=["idempotency"])

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
Token = Annotated[str, Field(min_length=1, max_length=64)]


class ClaimBody(BaseModel):
    key: Key
    lease: float = Field(gt=0, le=MAX_LEASE, description="seconds the claim holds the key")


class CompleteBody(BaseModel):
    key: Key
    token: Token
    result: Any = Field(default=None, description="the handler's result (any JSON value)")
    expires: float = Field(gt=0, le=MAX_EXPIRES, description="seconds the result is kept")


class ReleaseBody(BaseModel):
    key: Key
    token: Token


async def calling_function(request: Request) -> str:
    """The function whose own access key signed ``request``."""
    principal = await principal_of(request)
    if principal.function is None:
        raise PermissionDeniedError(
            f"{principal.label} belongs to no function: idempotency records are read and "
            "written by functions, signed with their own access key (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY in their environment)"
        )
    return principal.function


Caller = Annotated[str, Depends(calling_function)]


def claim_reply(answer: ClaimAnswer) -> Response:
    head: dict[str, Any] = {"status": answer.status, "expires_in": answer.expires_in}
    if answer.token is not None:
        head["token"] = answer.token
    body = orjson.dumps(head)
    if answer.result is not None:
        # The stored JSON text goes out as it is, without a parse and a second encoding.
        body = body[:-1] + b',"result":' + answer.result + b"}"
    return Response(body, media_type="application/json")


@router.post("/claim")
async def claim(body: ClaimBody, function: Caller, request: Request) -> Response:
    """Claim ``key`` for this delivery, or learn who did and what came of it."""
    answer = await node_of(request).control.idempotency.claim(function, body.key, lease=body.lease)
    return claim_reply(answer)


@router.post("/complete")
async def complete(body: CompleteBody, function: Caller, request: Request) -> dict[str, Any]:
    """Keep the result of the claim ``token`` holds."""
    await node_of(request).control.idempotency.complete(
        function, body.key, body.token, body.result, expires=body.expires
    )
    return {"status": "completed", "expires_in": body.expires}


@router.post("/release")
async def release(body: ReleaseBody, function: Caller, request: Request) -> dict[str, Any]:
    """Drop the claim ``token`` holds (its handler failed)."""
    released = await node_of(request).control.idempotency.release(function, body.key, body.token)
    return {"released": released}

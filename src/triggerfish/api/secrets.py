"""Secrets: ``/v1/secrets``.

``PUT /v1/secrets/{name}`` with ``{"value": "..."}`` creates (201) or replaces (200) a
secret, with the deploy scope; ``GET /v1/secrets`` and ``GET /v1/secrets/{name}`` list
names, times and who refers to each, with the read scope; ``DELETE
/v1/secrets/{name}[?force=true]`` removes one, refused (409) while a function or a
webhook refers to it unless forced. No answer carries a value, and no message here
repeats one.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from triggerfish.api.deps import control_of, require
from triggerfish.control import SecretListing
from triggerfish.errors import PayloadTooLargeError, ValidationError
from triggerfish.security.secrets import MAX_VALUE_BYTES, check_name

router = APIRouter(prefix="/v1/secrets", tags=["secrets"])

# JSON may spell each byte of the value as an escape of up to six characters.
MAX_BODY_BYTES = 6 * MAX_VALUE_BYTES + 1024


def listing_json(listing: SecretListing) -> dict[str, Any]:
    return {
        "name": listing.name,
        "created_at": listing.created_at,
        "updated_at": listing.updated_at,
        "used_by": [
            {"kind": use.kind, "name": use.name, "variables": list(use.variables)}
            if use.kind == "function"
            else {"kind": use.kind, "name": use.name}
            for use in listing.used_by
        ],
    }


def _value_of(body: bytes) -> str:
    """The value of a ``{"value": "..."}`` body; the messages never show the body."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the body is {len(body):,} bytes; a secret's value is at most {MAX_VALUE_BYTES:,}"
        )
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValidationError(
            'expected a JSON body {"value": "<the secret>"}; this one is not valid JSON',
            field="value",
        ) from None
    if not isinstance(parsed, dict) or set(parsed) != {"value"}:
        raise ValidationError(
            'expected a JSON body {"value": "<the secret>"} with no other key', field="value"
        )
    value = parsed["value"]
    if not isinstance(value, str):
        raise ValidationError("the secret's value must be a JSON string", field="value")
    return value


@router.put(
    "/{name}",
    dependencies=[Depends(require("deploy"))],
    responses={201: {"description": "The secret is new"}},
)
async def put_secret(name: str, request: Request) -> JSONResponse:
    check_name(name)
    value = _value_of(await request.body())
    listing, created = await control_of(request).secrets.set(name, value)
    return JSONResponse(listing_json(listing), status_code=201 if created else 200)


@router.get("", dependencies=[Depends(require("read"))])
async def list_secrets(request: Request) -> dict[str, Any]:
    return {"secrets": [listing_json(s) for s in await control_of(request).secrets.all()]}


@router.get("/{name}", dependencies=[Depends(require("read"))])
async def get_secret(name: str, request: Request) -> dict[str, Any]:
    return listing_json(await control_of(request).secrets.get(name))


@router.delete("/{name}", status_code=204, dependencies=[Depends(require("deploy"))])
async def delete_secret(name: str, request: Request, force: bool = False) -> None:
    await control_of(request).secrets.delete(name, force=force)

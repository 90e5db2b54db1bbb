"""Errors as ``application/problem+json`` (RFC 9457): one table from error family to
HTTP status, and a message a person can act on."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from triggerfish import errors
from triggerfish.api.raw import Reply

PROBLEM = "application/problem+json"

#: First match wins: order subclasses before their bases.
STATUS: tuple[tuple[type[errors.TriggerfishError], int, str], ...] = (
    (errors.PayloadTooLargeError, 413, "payload-too-large"),
    (errors.EventValidationError, 400, "invalid-event"),
    (errors.PatternError, 400, "invalid-pattern"),
    (errors.ValidationError, 400, "invalid-request"),
    (errors.ConfigError, 400, "invalid-config"),
    (errors.BuildError, 400, "build-failed"),
    (errors.PermissionDeniedError, 403, "forbidden"),
    (errors.AuthError, 401, "unauthorized"),
    (errors.NotFoundError, 404, "not-found"),
    (errors.ConflictError, 409, "conflict"),
    (errors.ThrottledError, 429, "throttled"),
    (errors.AdapterError, 503, "backend-unavailable"),
    (errors.TriggerfishError, 500, "internal"),
)


def problem(
    status: int, kind: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://triggerfish.dev/problems/{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def problem_reply(exc: errors.TriggerfishError) -> Reply:
    """The problem document of an error, for the plain-ASGI paths (``api.raw``)."""
    status, kind = next((st, k) for family, st, k in STATUS if isinstance(exc, family))
    body: dict[str, Any] = {
        "type": f"https://triggerfish.dev/problems/{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": str(exc),
    }
    field = getattr(exc, "field", None)
    if field:
        body["field"] = field
    reply = Reply(status, orjson.dumps(body), media_type=PROBLEM.encode())
    if isinstance(exc, errors.ThrottledError):
        reply.header("Retry-After", str(max(1, round(exc.retry_after))))
    elif status == 503:
        # A store or bus that is away: the node reconnects by itself, try again soon.
        reply.header("Retry-After", "1")
    if isinstance(exc, errors.AuthError) and not isinstance(exc, errors.PermissionDeniedError):
        reply.header("WWW-Authenticate", 'Bearer realm="triggerfish"')
    return reply


async def triggerfish_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TriggerfishError)
    return problem_reply(exc).response()


async def request_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{where}: {item.get('msg', 'invalid')}" if where else item.get("msg", ""))
    return problem(400, "invalid-request", "; ".join(parts) or "invalid request")


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, "http-error", str(exc.detail), headers=dict(exc.headers or {}))

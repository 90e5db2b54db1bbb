"""Errors as ``application/problem+json`` (RFC 9457): one table from error family to
HTTP status, and a message a person can act on."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from triggerfish import errors

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


async def triggerfish_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.TriggerfishError)
    status, kind = next((st, k) for family, st, k in STATUS if isinstance(exc, family))
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    field = getattr(exc, "field", None)
    if field:
        extra["field"] = field
    if isinstance(exc, errors.ThrottledError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, errors.AuthError) and not isinstance(exc, errors.PermissionDeniedError):
        headers["WWW-Authenticate"] = 'Bearer realm="triggerfish"'
    return problem(status, kind, str(exc), headers=headers, **extra)


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

"""Errors as ``application/problem+json`` (RFC 9457): one table from error family to
HTTP status, and a message a person can act on. ``RESPONSES`` declares those answers in
the OpenAPI document, for every route of ``/v1``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from triggerfish import errors
from triggerfish.api.raw import Reply
from triggerfish.api.redact import without_paths
from triggerfish.observe.disk import LowDiskError

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
    (LowDiskError, 503, "low-disk-space"),
    (errors.AdapterError, 503, "backend-unavailable"),
    (errors.TriggerfishError, 500, "internal"),
)


class Problem(BaseModel):
    """An error answer (RFC 9457). Some carry more members, as `field`: the input at fault."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str


def _answer(description: str, *, retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}},
    }
    if retry:
        answer["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return answer


#: The error answers of the routes of ``/v1``, as OpenAPI ``responses`` (``api.openapi``
#: adds the ``Problem`` schema they refer to).
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _answer("The request is not valid: a parameter, a header or the body."),
    401: _answer("Credentials are missing or not valid (for a webhook: its signature)."),
    403: _answer("The credentials do not allow this operation on this resource."),
    404: _answer("The function, topic or other resource named does not exist."),
    409: _answer("The change conflicts with what exists, or with what uses it."),
    413: _answer("The body is over this operation's limit."),
    429: _answer("The function is at its concurrency limit.", retry=True),
    431: _answer("The request's header fields are over the limit."),
    503: _answer("The store or the bus is unavailable for now.", retry=True),
}


def problem(
    status: int, kind: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://triggerfish.dev/problems/{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": without_paths(detail),
        **extra,
    }
    if status == 503 and not any(name.lower() == "retry-after" for name in headers or {}):
        headers = {**(headers or {}), "Retry-After": "1"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def error_status(exc: BaseException) -> int:
    """The HTTP status an error is answered with (500 for one not of Triggerfish's)."""
    if not isinstance(exc, errors.TriggerfishError):
        return 500
    return next(st for family, st, _k in STATUS if isinstance(exc, family))


def problem_reply(exc: errors.TriggerfishError) -> Reply:
    """The problem document of an error, for the plain-ASGI paths (``api.raw``)."""
    status, kind = next((st, k) for family, st, k in STATUS if isinstance(exc, family))
    body: dict[str, Any] = {
        "type": f"https://triggerfish.dev/problems/{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": without_paths(str(exc)),
    }
    field = getattr(exc, "field", None)
    if field:
        body["field"] = field
    reply = Reply(status, orjson.dumps(body), media_type=PROBLEM.encode())
    if isinstance(exc, errors.ThrottledError):
        reply.header("Retry-After", str(max(1, round(exc.retry_after))))
    elif status == 503:
        # A store or bus that is away: the node reconnects by itself, try again soon;
        # a disk low on space says how long (``observe.disk``).
        retry_after = getattr(exc, "retry_after", 1.0)
        reply.header("Retry-After", str(max(1, round(retry_after))))
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

"""Errors of the Lambda API in Lambda's own shape, so AWS SDKs raise their named
exceptions (``client.exceptions.ResourceNotFoundException`` ...).

An error is a JSON body ``{"Type": "User", "message": ...}`` (``"Message"`` for
``ResourceNotFoundException``, as Lambda spells it) with the code in the
``x-amzn-ErrorType`` header, which is where botocore's rest-json parser reads it.
``LambdaRoute`` turns every exception a route raises into such a response, so no
error of these paths is answered as ``application/problem+json`` (but for the 431 of
``api.limits``, which refuses a head before any route). ``RESPONSES`` declares them in
the OpenAPI document.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from triggerfish import errors
from triggerfish.api.problems import RESPONSES as PROBLEM_RESPONSES
from triggerfish.api.raw import Reply
from triggerfish.api.redact import without_paths
from triggerfish.security.sigv4 import S3AuthError

log = logging.getLogger("triggerfish.lambda")

THROTTLE_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"


class LambdaError(errors.TriggerfishError):
    """An error answered as Lambda answers it: ``code`` goes to ``x-amzn-ErrorType``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        kind: str | None = "User",
        headers: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.kind = kind
        self.headers = headers or {}
        self.extra = extra or {}


class LambdaErrorDocument(BaseModel):
    """Lambda's error body; the error's code is in the ``x-amzn-ErrorType`` header."""

    model_config = ConfigDict(extra="allow")

    Type: str | None = None
    message: str | None = None
    Message: str | None = None


def _answer(description: str, codes: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "x-amzn-ErrorType": {"description": codes, "schema": {"type": "string"}},
        },
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{LambdaErrorDocument.__name__}"}
            }
        },
    }


#: The error answers of the Lambda API, as OpenAPI ``responses`` (``api.openapi`` adds
#: the ``LambdaErrorDocument`` schema they refer to).
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _answer(
        "A parameter, the payload or the signature is not valid.",
        "InvalidParameterValueException, InvalidRequestContentException, "
        "IncompleteSignatureException",
    ),
    403: _answer(
        "Credentials are missing or not valid, or do not allow this operation.",
        "MissingAuthenticationTokenException, UnrecognizedClientException, "
        "InvalidSignatureException, AccessDeniedException",
    ),
    404: _answer("The function, version or alias does not exist.", "ResourceNotFoundException"),
    409: _answer("The alias exists already.", "ResourceConflictException"),
    413: _answer("The body is over this operation's limit.", "RequestTooLargeException"),
    429: _answer("The function is at its concurrency limit.", "TooManyRequestsException"),
    431: PROBLEM_RESPONSES[431],
    503: _answer(
        "The store or the bus is away for now; send it again (Retry-After).",
        "ServiceException",
    ),
}


def invalid_parameter(message: str) -> LambdaError:
    return LambdaError(400, "InvalidParameterValueException", message)


#: S3's signature error codes (from ``sigv4.verify``) as Lambda names them.
_SIGNATURE_CODES = {
    "InvalidAccessKeyId": (403, "UnrecognizedClientException"),
    "SignatureDoesNotMatch": (403, "InvalidSignatureException"),
    "RequestTimeTooSkewed": (403, "InvalidSignatureException"),
    "AuthorizationHeaderMalformed": (400, "IncompleteSignatureException"),
}


def lambda_error(exc: Exception) -> LambdaError:
    """The Lambda error for anything a route raised."""
    if isinstance(exc, LambdaError):
        return exc
    message = without_paths(str(exc))
    if isinstance(exc, S3AuthError):
        status, code = _SIGNATURE_CODES.get(exc.code, (403, "InvalidSignatureException"))
        return LambdaError(status, code, message, kind=None)
    if isinstance(exc, errors.PermissionDeniedError):
        return LambdaError(403, "AccessDeniedException", message, kind=None)
    if isinstance(exc, errors.AuthError):
        return LambdaError(403, "UnrecognizedClientException", message, kind=None)
    if isinstance(exc, errors.ThrottledError):
        retry_after = str(max(1, round(exc.retry_after)))
        return LambdaError(
            429,
            "TooManyRequestsException",
            message,
            headers={"Retry-After": retry_after},
            extra={"Reason": THROTTLE_REASON},
        )
    if isinstance(exc, errors.PayloadTooLargeError):
        return LambdaError(413, "RequestTooLargeException", message)
    if isinstance(exc, errors.ValidationError) and exc.field == "payload":
        return LambdaError(400, "InvalidRequestContentException", message)
    if isinstance(exc, errors.ValidationError | errors.ConfigError):
        return invalid_parameter(message)
    if isinstance(exc, RequestValidationError):
        parts = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()]
        return invalid_parameter("; ".join(parts) or "invalid request")
    if isinstance(exc, errors.NotFoundError):
        return LambdaError(404, "ResourceNotFoundException", message)
    if isinstance(exc, errors.AdapterError):
        # The store or the bus is away: SDKs retry a 503 by themselves.
        log.warning("Lambda API request failed: %s", exc)
        retry_after = str(max(1, round(getattr(exc, "retry_after", 1.0))))
        return LambdaError(
            503, "ServiceException", message, kind="Service", headers={"Retry-After": retry_after}
        )
    if isinstance(exc, errors.TriggerfishError):
        log.error("Lambda API request failed: %s", exc, exc_info=exc)
        return LambdaError(500, "ServiceException", message, kind="Service")
    log.exception("Lambda API request failed", exc_info=exc)
    return LambdaError(500, "ServiceException", "an internal error occurred", kind="Service")


def error_reply(error: LambdaError, request_id: str | None = None) -> Reply:
    # Lambda writes "Message" for a missing resource and "message" elsewhere; botocore
    # reads either.
    key = "Message" if error.code == "ResourceNotFoundException" else "message"
    body: dict[str, str] = {key: str(error)}
    if error.kind is not None:
        body["Type"] = error.kind
    body.update(error.extra)
    reply = Reply(error.status, orjson.dumps(body))
    reply.header("x-amzn-ErrorType", error.code)
    reply.header("x-amzn-RequestId", request_id or new_request_id())
    for name, value in error.headers.items():
        reply.header(name, value)
    return reply


def error_response(error: LambdaError, request_id: str | None = None) -> Response:
    return error_reply(error, request_id).response()


def new_request_id() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


class LambdaRoute(APIRoute):
    """A route whose errors, of every kind, are answered in Lambda's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return error_response(lambda_error(exc))

        return guarded

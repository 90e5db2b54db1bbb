"""Errors of the producer APIs in the AWS JSON protocol's shape, so AWS SDKs raise
their named exceptions: ``{"__type": code, "message": ...}`` with the code in
``x-amzn-ErrorType`` too, and for SQS the query-compatible code in
``x-amzn-query-error`` (``AWS.SimpleQueueService.NonExistentQueue;Sender``), which is
where botocore reads SQS's classic error codes from."""

from __future__ import annotations

import logging

import orjson

from triggerfish import errors
from triggerfish.api.lambda_.errors import new_request_id
from triggerfish.api.raw import Reply
from triggerfish.api.redact import without_paths
from triggerfish.security.sigv4 import S3AuthError

log = logging.getLogger("triggerfish.producers")

AMZ_JSON = b"application/x-amz-json-1.1"


class AwsError(errors.TriggerfishError):
    """An error answered as an AWS JSON service answers it."""

    def __init__(
        self, status: int, code: str, message: str, *, query_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.query_code = query_code


def validation(message: str) -> AwsError:
    return AwsError(400, "ValidationException", message)


_SIGNATURE_CODES = {
    "InvalidAccessKeyId": (403, "UnrecognizedClientException"),
    "AuthorizationHeaderMalformed": (400, "IncompleteSignatureException"),
}


def aws_error(exc: Exception) -> AwsError:
    """The AWS error for anything an operation raised."""
    if isinstance(exc, AwsError):
        return exc
    message = without_paths(str(exc))
    if isinstance(exc, S3AuthError):
        status, code = _SIGNATURE_CODES.get(exc.code, (403, "InvalidSignatureException"))
        return AwsError(status, code, message)
    if isinstance(exc, errors.PermissionDeniedError):
        return AwsError(400, "AccessDeniedException", message)
    if isinstance(exc, errors.AuthError):
        return AwsError(400, "UnrecognizedClientException", message)
    if isinstance(exc, errors.ValidationError):
        return validation(message)
    if isinstance(exc, errors.AdapterError):
        log.warning("producer API request failed: %s", exc)
        return AwsError(503, "ServiceUnavailable", message)
    log.error("producer API request failed", exc_info=exc)
    return AwsError(500, "InternalFailure", "an internal error occurred")


def error_reply(error: AwsError, *, namespace: str | None = None) -> Reply:
    """``namespace`` (``com.amazonaws.sqs``) prefixes the code in ``__type``."""
    kind = f"{namespace}#{error.code}" if namespace else error.code
    reply = Reply(error.status, orjson.dumps({"__type": kind, "message": str(error)}))
    reply.media_type = AMZ_JSON
    reply.header("x-amzn-ErrorType", error.code)
    reply.header("x-amzn-RequestId", new_request_id())
    if error.query_code is not None:
        fault = "Sender" if error.status < 500 else "Receiver"
        reply.header("x-amzn-query-error", f"{error.query_code};{fault}")
    if error.status == 503:
        reply.header("Retry-After", "1")
    return reply

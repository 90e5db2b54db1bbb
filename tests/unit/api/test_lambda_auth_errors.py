"""Who may call the Lambda API (botocore's own signatures, Bearer tokens), and errors
that botocore parses into the exceptions boto3 users catch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from starlette.requests import Request

from triggerfish import errors
from triggerfish.api.lambda_.auth import authenticate
from triggerfish.api.lambda_.errors import LambdaError, error_response, lambda_error
from triggerfish.config import load_settings
from triggerfish.node import Node
from triggerfish.security.sigv4 import S3AuthError

ARN_PATH = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Aecho/invocations"


@dataclass
class Started:
    node: Node
    admin: str
    key: tuple[str, str]


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[Started]:
    node = Node(load_settings({"data_dir": tmp_path}, environ={}, cwd=tmp_path))
    await node.store.start()
    try:
        admin = await node.tokens.start()
        assert admin is not None
        key = await node.access_keys.create("tests")
        yield Started(node, admin, key)
    finally:
        await node.store.stop()


def signed(
    key: tuple[str, str], path: str, body: bytes, *, service: str = "lambda", query: str = ""
) -> tuple[dict[str, Any], bytes]:
    """An ASGI scope for a request botocore signed, and its body."""
    url = f"http://127.0.0.1:8080{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method="POST", url=url, data=body, headers={"X-Amz-Log-Type": "Tail"})
    SigV4Auth(Credentials(*key), service, "eu-west-3").add_auth(request)
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": [(k.lower().encode(), str(v).encode()) for k, v in request.headers.items()]
        + [(b"host", b"127.0.0.1:8080")],
    }
    return scope, body


async def test_a_botocore_signature_over_an_arn_path_verifies(started: Started) -> None:
    scope, body = signed(started.key, ARN_PATH, b'{"a": 1}', query="Qualifier=%24LATEST")
    who = await authenticate(started.node, Request(scope), body, "invoke")
    assert who.id == started.key[0]


async def test_a_changed_body_or_another_service_is_refused(started: Started) -> None:
    scope, _body = signed(started.key, ARN_PATH, b'{"a": 1}')
    with pytest.raises(S3AuthError) as caught:
        await authenticate(started.node, Request(scope), b'{"a": 2}', "invoke")
    assert lambda_error(caught.value).code == "InvalidSignatureException"
    scope, body = signed(started.key, ARN_PATH, b"{}", service="s3")
    with pytest.raises(LambdaError) as wrong_service:
        await authenticate(started.node, Request(scope), body, "invoke")
    assert wrong_service.value.code == "InvalidSignatureException"
    assert "'lambda'" in str(wrong_service.value)


async def test_unknown_keys_and_missing_credentials_are_refused(started: Started) -> None:
    scope, body = signed(("TF" + "Z" * 18, started.key[1]), ARN_PATH, b"{}")
    with pytest.raises(S3AuthError) as caught:
        await authenticate(started.node, Request(scope), body, "invoke")
    assert lambda_error(caught.value).code == "UnrecognizedClientException"
    bare = {"type": "http", "method": "POST", "path": ARN_PATH, "headers": []}
    with pytest.raises(LambdaError) as missing:
        await authenticate(started.node, Request(bare), b"{}", "invoke")
    assert missing.value.code == "MissingAuthenticationTokenException"


async def test_bearer_tokens_are_checked_with_their_scope(started: Started) -> None:
    text, _record = await started.node.tokens.issue("reader", ["read"])
    for token, scope in ((started.admin, "invoke"), (text, "read")):
        headers = [(b"authorization", f"Bearer {token}".encode())]
        request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers})
        assert await authenticate(started.node, request, b"", scope)
    headers = [(b"authorization", f"Bearer {text}".encode())]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": headers})
    with pytest.raises(errors.PermissionDeniedError) as caught:
        await authenticate(started.node, request, b"{}", "invoke")
    assert lambda_error(caught.value).code == "AccessDeniedException"


def parsed(exc: Exception) -> dict[str, Any]:
    """What botocore makes of our answer to an Invoke that raised ``exc``."""
    response = error_response(lambda_error(exc))
    model = botocore.session.get_session().get_service_model("lambda")
    operation = model.operation_model("Invoke")
    headers = {k.decode(): v.decode() for k, v in response.raw_headers}
    http = {"status_code": response.status_code, "headers": headers, "body": response.body}
    result: dict[str, Any] = create_parser("rest-json").parse(http, operation.output_shape)
    return result


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.NotFoundError("no function 'x'"), 404, "ResourceNotFoundException"),
        (errors.ThrottledError("at its limit", retry_after=2.0), 429, "TooManyRequestsException"),
        (errors.PayloadTooLargeError("too big"), 413, "RequestTooLargeException"),
        (
            errors.ValidationError("not JSON", field="payload"),
            400,
            "InvalidRequestContentException",
        ),
        (errors.ValidationError("bad", field="qualifier"), 400, "InvalidParameterValueException"),
        (S3AuthError("SignatureDoesNotMatch", "no"), 403, "InvalidSignatureException"),
        (S3AuthError("InvalidAccessKeyId", "who"), 403, "UnrecognizedClientException"),
        (errors.AdapterError("the store is away"), 503, "ServiceException"),
        (errors.TriggerfishError("disk"), 500, "ServiceException"),
    ],
)
def test_errors_parse_to_the_codes_boto3_raises(exc: Exception, status: int, code: str) -> None:
    result = parsed(exc)
    assert result["Error"]["Code"] == code
    assert result["Error"]["Message"] == str(exc)
    assert result["ResponseMetadata"]["HTTPStatusCode"] == status
    client = botocore.session.get_session().create_client(
        "lambda", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    if code not in ("InvalidSignatureException", "UnrecognizedClientException"):
        # Lambda's own errors have a modeled exception class; signature errors are
        # ClientErrors with the code, as AWS sends them.
        assert client.exceptions.from_code(code).__name__ == code


def test_a_throttle_carries_retry_after_and_the_reason() -> None:
    response = error_response(lambda_error(errors.ThrottledError("busy", retry_after=2.4)))
    assert response.headers["retry-after"] == "2"
    assert response.headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert b'"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"' in response.body
    assert b'"Type":"User"' in response.body


def test_unexpected_errors_do_not_leak_their_text() -> None:
    result = parsed(RuntimeError("secret internals"))
    assert result["Error"]["Code"] == "ServiceException"
    assert "secret" not in result["Error"]["Message"]

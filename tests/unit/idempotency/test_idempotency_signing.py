"""The SDK's own request signer: what the node's verifier accepts, the same signature
botocore makes for the same request, and a body changed after signing refused."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from triggerfish.idempotency.records import signed_headers
from triggerfish.security.sigv4 import S3AuthError, verify

KEY, SECRET = "TFABCDEFGHIJKLMNOPQR", "s3cr3t/s3cr3t+s3cr3t/s3cr3t+s3cr3t/s3cr3"
URL = "http://127.0.0.1:8080/v1/idempotency/claim"
BODY = b'{"key":"handler#A-1","lease":35.0}'


async def lookup(key_id: str) -> str | None:
    return SECRET if key_id == KEY else None


def sign(body: bytes = BODY, now: datetime | None = None) -> dict[str, str]:
    parts = urlsplit(URL)
    return signed_headers(
        "POST",
        parts.netloc,
        parts.path,
        body,
        access_key=KEY,
        secret_key=SECRET,
        region="eu-west-3",
        now=now,
    )


async def check(headers: dict[str, str], body: bytes) -> str:
    credentials = await verify(
        "POST",
        urlsplit(URL).path,
        [],
        headers,
        lookup,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    return credentials.access_key


async def test_the_node_verifies_what_the_sdk_signs() -> None:
    assert await check(sign(), BODY) == KEY


async def test_a_body_other_than_the_signed_one_is_refused() -> None:
    headers = sign()
    # The node checks the declared hash against the body it got (``api.deps``); a
    # declared hash that was changed no longer matches the signature.
    headers["x-amz-content-sha256"] = hashlib.sha256(b"{}").hexdigest()
    with pytest.raises(S3AuthError, match="signature"):
        await check(headers, b"{}")


def test_the_signature_is_the_one_botocore_makes() -> None:
    request = AWSRequest(
        "POST",
        URL,
        data=BODY,
        headers={
            "Content-Type": "application/json",
            "X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest(),
        },
    )
    SigV4Auth(Credentials(KEY, SECRET), "triggerfish", "eu-west-3").add_auth(request)
    moment = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    ours = sign(now=moment)

    assert ours["authorization"] == request.headers["Authorization"]

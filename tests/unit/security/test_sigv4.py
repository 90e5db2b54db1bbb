"""AWS Signature Version 4 verification, against AWS's published examples and botocore."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from triggerfish.security.sigv4 import ChunkedBody, S3AuthError, decode_path, verify

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_EXAMPLE_TIME = datetime(2013, 5, 24, 0, 0, 5, tzinfo=UTC)
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


async def lookup(key_id: str) -> str | None:
    return SECRET if key_id == KEY_ID else None


async def test_aws_get_object_example_verifies() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY,
        "x-amz-date": "20130524T000000Z",
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ),
    }
    creds = await verify("GET", "/test.txt", [], headers, lookup, now=AWS_EXAMPLE_TIME)
    assert creds.access_key == KEY_ID
    headers["range"] = "bytes=0-10"
    with pytest.raises(S3AuthError) as caught:
        await verify("GET", "/test.txt", [], headers, lookup, now=AWS_EXAMPLE_TIME)
    assert caught.value.code == "SignatureDoesNotMatch"


async def test_aws_presigned_example_verifies_until_it_expires() -> None:
    query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{KEY_ID}/20130524/us-east-1/s3/aws4_request"),
        ("X-Amz-Date", "20130524T000000Z"),
        ("X-Amz-Expires", "86400"),
        ("X-Amz-SignedHeaders", "host"),
        ("X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
    ]
    headers = {"host": "examplebucket.s3.amazonaws.com"}
    await verify("GET", "/test.txt", query, headers, lookup, now=AWS_EXAMPLE_TIME)
    later = datetime(2013, 5, 25, 0, 0, 1, tzinfo=UTC)
    with pytest.raises(S3AuthError, match="expired"):
        await verify("GET", "/test.txt", query, headers, lookup, now=later)


async def test_aws_chunked_upload_example_checks_every_chunk() -> None:
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;"
            "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        ),
    }
    path = "/examplebucket/chunkObject.txt"
    creds = await verify("PUT", path, [], headers, lookup, now=AWS_EXAMPLE_TIME)
    signatures = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]
    body = (
        b"10000;chunk-signature=" + signatures[0].encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
        b"400;chunk-signature=" + signatures[1].encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
        b"0;chunk-signature=" + signatures[2].encode() + b"\r\n\r\n"
    )
    assert len(body) == 66824
    decoder = ChunkedBody(creds)
    # Arbitrary network splits must not matter.
    out = b"".join(decoder.feed(body[i : i + 777]) for i in range(0, len(body), 777))
    decoder.finish()
    assert out == b"a" * 66560

    tampered = ChunkedBody(creds)
    with pytest.raises(S3AuthError) as caught:
        tampered.feed(body.replace(b"a" * 1024, b"b" + b"a" * 1023))
    assert caught.value.code == "SignatureDoesNotMatch"


async def test_unsigned_trailer_body_gives_payload_and_checksum() -> None:
    headers = signed_by_botocore(
        "PUT", "/b/k", {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}
    )
    creds = await verify("PUT", "/b/k", [], headers, lookup)
    decoder = ChunkedBody(creds)
    out = decoder.feed(b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n")
    decoder.finish()
    assert out == b"abc"
    assert decoder.trailers == {"x-amz-checksum-crc32": "NSRBwg=="}
    cut = ChunkedBody(creds)
    cut.feed(b"3\r\nabc\r\n")
    with pytest.raises(S3AuthError, match="before its last chunk"):
        cut.finish()


def signed_by_botocore(
    method: str, path: str, extra: dict[str, str], *, secret: str = SECRET, query: str = ""
) -> dict[str, str]:
    """Headers of a request signed by botocore; ``path`` is decoded, and encoded here
    as clients encode it."""
    url = f"http://127.0.0.1:9000{quote(path, safe='/~')}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(extra), data=b"")
    S3SigV4Auth(BotoCredentials(KEY_ID, secret), "s3", "us-east-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:9000"
    return headers


async def test_botocore_signatures_verify_and_a_wrong_secret_does_not() -> None:
    path = "/photos/my cat+1.jpg"
    query = [("prefix", "a b/"), ("list-type", "2")]
    headers = signed_by_botocore("GET", path, {}, query="prefix=a%20b%2F&list-type=2")
    creds = await verify("GET", path, query, headers, lookup)
    assert creds.payload_hash == EMPTY

    wrong = signed_by_botocore("GET", path, {}, secret="x" * 40)
    with pytest.raises(S3AuthError) as caught:
        await verify("GET", path, [], wrong, lookup)
    assert caught.value.code == "SignatureDoesNotMatch"


async def test_botocore_presigned_url_verifies() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:9000/photos/a%20b.jpg", headers={})
    S3SigV4QueryAuth(BotoCredentials(KEY_ID, SECRET), "s3", "us-east-1", expires=60).add_auth(
        request
    )
    parts = urlsplit(request.url)
    query = parse_qsl(parts.query)
    creds = await verify(
        "GET", decode_path(parts.path.encode()), query, {"host": "127.0.0.1:9000"}, lookup
    )
    assert creds.access_key == KEY_ID


async def test_unknown_key_skewed_clock_and_unsigned_requests_are_refused() -> None:
    headers = signed_by_botocore("GET", "/", {})

    async def nobody(_key: str) -> str | None:
        return None

    with pytest.raises(S3AuthError) as caught:
        await verify("GET", "/", [], headers, nobody)
    assert caught.value.code == "InvalidAccessKeyId"
    with pytest.raises(S3AuthError) as caught:
        await verify("GET", "/", [], headers, lookup, now=datetime(2001, 1, 1, tzinfo=UTC))
    assert caught.value.code == "RequestTimeTooSkewed"
    with pytest.raises(S3AuthError) as caught:
        await verify("GET", "/", [], {"host": "x"}, lookup)
    assert caught.value.code == "AccessDenied"

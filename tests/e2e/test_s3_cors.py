"""CORS on the buckets against a running Triggerfish: the configuration through boto3,
browsers' preflights (unsigned) and the headers on the answers to presigned URLs, as
S3 gives them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from support.s3 import s3_client, s3_node
from support.server import Server

pytestmark = pytest.mark.e2e

ORIGIN = "https://app.example.com"
RULES = {
    "CORSRules": [
        {
            "ID": "uploads",
            "AllowedOrigins": ["https://*.example.com"],
            "AllowedMethods": ["PUT", "GET"],
            "AllowedHeaders": ["content-type", "x-amz-meta-*"],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 600,
        },
        {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with s3_node(tmp_path_factory.mktemp("s3-cors")) as server:
        yield server


@pytest.fixture(scope="module")
def s3(server: Server) -> BaseClient:
    return s3_client(server, signature_version="s3v4")


def preflight(
    server: Server, path: str, origin: str, method: str, headers: str = ""
) -> httpx.Response:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = headers
    return httpx.options(f"{server.url}{path}", headers=asked)


def test_the_configuration_is_put_read_and_deleted(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="cors-config")
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_cors(Bucket="cors-config")
    assert caught.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket="cors-config", CORSConfiguration=RULES)
    assert s3.get_bucket_cors(Bucket="cors-config")["CORSRules"] == RULES["CORSRules"]
    s3.delete_bucket_cors(Bucket="cors-config")
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_cors(Bucket="cors-config")
    assert caught.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"


def test_a_configuration_s3_refuses_is_refused(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="cors-refused")
    bad = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_cors(Bucket="cors-refused", CORSConfiguration=bad)
    assert caught.value.response["Error"]["Code"] == "InvalidRequest"
    two = {"CORSRules": [{"AllowedOrigins": ["https://*.*.com"], "AllowedMethods": ["GET"]}]}
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_cors(Bucket="cors-refused", CORSConfiguration=two)
    assert caught.value.response["Error"]["Code"] == "InvalidRequest"


def test_preflights_are_answered_by_the_first_matching_rule(s3: BaseClient, server: Server) -> None:
    s3.create_bucket(Bucket="cors-preflight")
    before = preflight(server, "/cors-preflight/photo.jpg", ORIGIN, "PUT")
    assert before.status_code == 403
    assert "<Code>AccessForbidden</Code>" in before.text
    s3.put_bucket_cors(Bucket="cors-preflight", CORSConfiguration=RULES)

    allowed = preflight(
        server, "/cors-preflight/photo.jpg", ORIGIN, "PUT", "Content-Type, X-Amz-Meta-Owner"
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-methods"] == "PUT, GET"
    assert allowed.headers["access-control-allow-headers"] == "content-type, x-amz-meta-owner"
    assert allowed.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert allowed.headers["access-control-max-age"] == "600"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in allowed.headers["vary"]

    on_bucket = preflight(server, "/cors-preflight", "https://other.example.com", "GET")
    assert on_bucket.status_code == 200
    anyone = preflight(server, "/cors-preflight/photo.jpg", "https://elsewhere.org", "HEAD")
    assert anyone.status_code == 200
    assert anyone.headers["access-control-allow-origin"] == "*"

    for origin, method, headers in (
        ("https://elsewhere.org", "PUT", ""),  # no rule for this origin and method
        (ORIGIN, "DELETE", ""),  # nor for this method
        (ORIGIN, "PUT", "authorization"),  # nor for this header
    ):
        refused = preflight(server, "/cors-preflight/photo.jpg", origin, method, headers)
        assert refused.status_code == 403
        assert "CORSResponse: This CORS request is not allowed" in refused.text

    no_origin = httpx.options(
        f"{server.url}/cors-preflight/photo.jpg", headers={"access-control-request-method": "PUT"}
    )
    assert no_origin.status_code == 400
    missing = preflight(server, "/no-such-bucket/photo.jpg", ORIGIN, "PUT")
    assert missing.status_code == 404
    assert "<Code>NoSuchBucket</Code>" in missing.text


def test_presigned_answers_carry_the_rules_headers(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="cors-presigned")
    s3.put_bucket_cors(Bucket="cors-presigned", CORSConfiguration=RULES)
    params = {"Bucket": "cors-presigned", "Key": "up.txt"}
    put_url = s3.generate_presigned_url("put_object", Params=params)
    put = httpx.put(put_url, content=b"from a browser", headers={"origin": ORIGIN})
    assert put.status_code == 200, put.text
    assert put.headers["access-control-allow-origin"] == ORIGIN
    assert put.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert "Origin" in put.headers["vary"]

    get_url = s3.generate_presigned_url("get_object", Params=params)
    got = httpx.get(get_url, headers={"origin": ORIGIN})
    assert got.content == b"from a browser"
    assert got.headers["access-control-allow-origin"] == ORIGIN

    stranger = httpx.get(get_url, headers={"origin": "https://elsewhere.org"})
    assert stranger.status_code == 200
    assert "access-control-allow-origin" not in stranger.headers
    assert "Origin" in stranger.headers["vary"]
    plain = httpx.get(get_url)
    assert "access-control-allow-origin" not in plain.headers

    missing = httpx.get(
        s3.generate_presigned_url("get_object", Params={"Bucket": "cors-presigned", "Key": "no"}),
        headers={"origin": ORIGIN},
    )
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == ORIGIN


def test_a_deleted_bucket_forgets_its_rules(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="cors-reborn")
    s3.put_bucket_cors(Bucket="cors-reborn", CORSConfiguration=RULES)
    s3.delete_bucket(Bucket="cors-reborn")
    s3.create_bucket(Bucket="cors-reborn")
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_cors(Bucket="cors-reborn")
    assert caught.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"

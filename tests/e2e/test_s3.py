"""The S3-compatible API with real clients (boto3 and the AWS CLI) against a running
Triggerfish: round trips, multipart, listings, ETags as S3 computes them, errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from support.lambda_api import new_key
from support.s3 import s3_client, s3_node
from support.server import Server
from support.services import in_ci

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
AWS_CLI_PATHS = ("/root/.pyenv/versions/3.11.7/bin/aws",)


def multipart_etag(data: bytes, part_size: int) -> str:
    digests = b"".join(
        hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)
    )
    return f"{hashlib.md5(digests).hexdigest()}-{-(-len(data) // part_size)}"


def aws_cli() -> str:
    found = shutil.which("aws") or next((p for p in AWS_CLI_PATHS if os.path.exists(p)), None)
    if found is None:
        if in_ci():
            pytest.fail("the AWS CLI (`aws`) is not installed")
        pytest.skip("the AWS CLI (`aws`) is not installed")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with s3_node(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="module")
def key(server: Server) -> tuple[str, str]:
    return new_key(server)


@pytest.fixture(scope="module")
def s3(server: Server, key: tuple[str, str]) -> BaseClient:
    return s3_client(server, key)


def test_boto3_round_trip_with_metadata_ranges_copy_and_delete(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="round-trip")
    assert "round-trip" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    body = os.urandom(100_000)
    put = s3.put_object(
        Bucket="round-trip",
        Key="docs/report 1.bin",
        Body=body,
        ContentType="application/x-report",
        Metadata={"owner": "ana"},
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    got = s3.get_object(Bucket="round-trip", Key="docs/report 1.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-report"
    assert got["Metadata"] == {"owner": "ana"}
    assert got["ETag"] == put["ETag"]
    part = s3.get_object(Bucket="round-trip", Key="docs/report 1.bin", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert s3.head_object(Bucket="round-trip", Key="docs/report 1.bin")["ContentLength"] == len(
        body
    )

    copied = s3.copy_object(
        Bucket="round-trip",
        Key="copy.bin",
        CopySource={"Bucket": "round-trip", "Key": "docs/report 1.bin"},
    )
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3.get_object(Bucket="round-trip", Key="copy.bin")["Metadata"] == {"owner": "ana"}

    deleted = s3.delete_objects(
        Bucket="round-trip",
        Delete={"Objects": [{"Key": "copy.bin"}, {"Key": "docs/report 1.bin"}]},
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["copy.bin", "docs/report 1.bin"]
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="round-trip", Key="copy.bin")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    s3.delete_bucket(Bucket="round-trip")
    with pytest.raises(ClientError) as caught:
        s3.head_bucket(Bucket="round-trip")
    assert caught.value.response["Error"]["Code"] == "404"


def test_listing_with_delimiter_and_pages(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="listing")
    keys = [f"logs/2024/{n:02d}.txt" for n in range(7)] + ["logs/readme", "top.txt", "a b+c"]
    for name in keys:
        s3.put_object(Bucket="listing", Key=name, Body=b"x")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="listing", PaginationConfig={"PageSize": 3}
    )
    listed = [item["Key"] for page in pages for item in page.get("Contents", [])]
    assert listed == sorted(keys)
    top = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["logs/"]
    assert [c["Key"] for c in top["Contents"]] == ["a b+c", "top.txt"]
    nested = s3.list_objects_v2(Bucket="listing", Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == ["logs/2024/"]
    v1 = s3.list_objects(Bucket="listing", Prefix="logs/2024/", MaxKeys=5)
    assert v1["IsTruncated"] is True
    assert len(v1["Contents"]) == 5


def test_boto3_multipart_upload_of_50_mb(s3: BaseClient, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="big-boto3")
    source = tmp_path / "fifty.bin"
    data = os.urandom(50 * MB)
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
    s3.upload_file(str(source), "big-boto3", "fifty.bin", Config=config)
    head = s3.head_object(Bucket="big-boto3", Key="fifty.bin")
    assert head["ETag"] == f'"{multipart_etag(data, 8 * MB)}"'
    assert head["ContentLength"] == len(data)
    target = tmp_path / "back.bin"
    s3.download_file("big-boto3", "fifty.bin", str(target))
    assert target.read_bytes() == data


def test_aborted_multipart_upload_leaves_no_object(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="aborted")
    upload = s3.create_multipart_upload(Bucket="aborted", Key="half.bin")["UploadId"]
    s3.upload_part(Bucket="aborted", Key="half.bin", UploadId=upload, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="aborted", Key="half.bin", UploadId=upload)
    assert s3.list_objects_v2(Bucket="aborted")["KeyCount"] == 0
    with pytest.raises(ClientError) as caught:
        s3.upload_part(Bucket="aborted", Key="half.bin", UploadId=upload, PartNumber=2, Body=b"")
    assert caught.value.response["Error"]["Code"] == "NoSuchUpload"


def test_virtual_host_style_addressing(server: Server, key: tuple[str, str]) -> None:
    """``<bucket>.localhost`` does not resolve everywhere, so requests are sent to
    127.0.0.1 with the virtual host in the Host header, as a resolver would."""
    endpoint = f"http://localhost:{server.port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "virtual"}),
    )
    hosts: list[str] = []

    def to_loopback(request: Any, **_kwargs: Any) -> None:
        parts = urlsplit(request.url)
        hosts.append(parts.netloc)
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{server.port}"))

    s3.meta.events.register("before-send.s3", to_loopback)
    s3.create_bucket(Bucket="virtual")
    s3.put_object(Bucket="virtual", Key="dir/v.txt", Body=b"hosted")
    assert s3.get_object(Bucket="virtual", Key="dir/v.txt")["Body"].read() == b"hosted"
    assert hosts[-1] == f"virtual.localhost:{server.port}"
    path_style = s3_client(server, key)
    assert path_style.get_object(Bucket="virtual", Key="dir/v.txt")["Body"].read() == b"hosted"


def test_wrong_signature_is_refused_and_stores_nothing(
    server: Server, key: tuple[str, str], s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="guarded")
    forged = s3_client(server, (key[0], "x" * 40), signature_version="s3v4")
    with pytest.raises(ClientError) as caught:
        forged.put_object(Bucket="guarded", Key="evil.txt", Body=b"evil")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3.list_objects_v2(Bucket="guarded")["KeyCount"] == 0

    unknown = s3_client(server, ("TFUNKNOWNKEY00000000", key[1]))
    with pytest.raises(ClientError) as caught:
        unknown.list_buckets()
    assert caught.value.response["Error"]["Code"] == "InvalidAccessKeyId"

    # The error is S3's XML document.
    url = forged.generate_presigned_url(
        "get_object", Params={"Bucket": "guarded", "Key": "a"}, ExpiresIn=60
    )
    response = httpx.get(url)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_presigned_url_and_revoked_key(
    server: Server, key: tuple[str, str], s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key="note.txt", Body=b"for you")
    signer = s3_client(server, key, signature_version="s3v4")
    url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": "shared", "Key": "note.txt"}, ExpiresIn=60
    )
    assert httpx.get(url).content == b"for you"

    temporary = new_key(server, "temporary")
    s3_client(server, temporary).head_bucket(Bucket="shared")
    server.cli("keys", "revoke", temporary[0], check=True)
    with pytest.raises(ClientError) as caught:
        s3_client(server, temporary).head_bucket(Bucket="shared")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    listed = json.loads(server.cli("keys", "list", "--json", check=True).stdout)
    assert {k["id"]: k["revoked"] for k in listed}[temporary[0]] is True


def test_control_api_stays_reachable_beside_s3(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    with server.client() as api:
        assert api.get("/v1/functions").status_code == 200


def test_aws_cli_cp_ls_sync_and_rm(server: Server, key: tuple[str, str], tmp_path: Path) -> None:
    aws = aws_cli()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [aws, "--endpoint-url", server.url, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("s3", "mb", "s3://cli-bucket")
    big = tmp_path / "fifty.bin"
    data = os.urandom(50 * MB)
    big.write_bytes(data)
    run("s3", "cp", str(big), "s3://cli-bucket/big/fifty.bin", "--only-show-errors")
    head = json.loads(
        run("s3api", "head-object", "--bucket", "cli-bucket", "--key", "big/fifty.bin")
    )
    # The AWS CLI uploads in 8 MB parts by default.
    assert head["ETag"] == f'"{multipart_etag(data, 8 * MB)}"'
    run("s3", "cp", "s3://cli-bucket/big/fifty.bin", str(tmp_path / "back.bin"), "--quiet")
    assert (tmp_path / "back.bin").read_bytes() == data

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha")
    (tree / "sub" / "my file.txt").write_text("beta")
    assert "upload:" in run("s3", "sync", str(tree), "s3://cli-bucket/tree/")
    assert run("s3", "sync", str(tree), "s3://cli-bucket/tree/") == ""  # nothing changed
    listing = run("s3", "ls", "--recursive", "s3://cli-bucket/tree/")
    assert "tree/a.txt" in listing
    assert "tree/sub/my file.txt" in listing
    small = json.loads(run("s3api", "head-object", "--bucket", "cli-bucket", "--key", "tree/a.txt"))
    assert small["ETag"] == f'"{hashlib.md5(b"alpha").hexdigest()}"'

    run("s3", "rm", "--recursive", "s3://cli-bucket/")
    assert run("s3", "ls", "s3://cli-bucket/") == ""
    run("s3", "rb", "s3://cli-bucket")
    assert "cli-bucket" not in run("s3", "ls")

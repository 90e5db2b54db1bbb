"""S3's object checksums with boto3 against a running Triggerfish: every algorithm S3
offers on PutObject (header or aws-chunked trailer), HEAD and GET with
``ChecksumMode``, multipart uploads (composite and full-object), copies, and the
refusals of a wrong or malformed checksum."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Iterator

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpchecksum import CrtCrc32cChecksum, CrtCrc64NvmeChecksum

from e2e.test_s3 import MB
from support.lambda_api import new_key
from support.s3 import s3_client, s3_node
from support.server import Server

pytestmark = pytest.mark.e2e

ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]


def digest(algorithm: str, data: bytes) -> bytes:
    """The raw checksum, computed on the client's side."""
    if algorithm == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algorithm in ("SHA1", "SHA256"):
        return hashlib.new(algorithm.lower(), data).digest()
    checksum = CrtCrc32cChecksum() if algorithm == "CRC32C" else CrtCrc64NvmeChecksum()
    checksum.update(data)
    return checksum.digest()


def b64(algorithm: str, data: bytes) -> str:
    return base64.b64encode(digest(algorithm, data)).decode("ascii")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with s3_node(tmp_path_factory.mktemp("s3-checksums")) as server:
        yield server


@pytest.fixture(scope="module")
def key(server: Server) -> tuple[str, str]:
    return new_key(server)


@pytest.fixture(scope="module")
def s3(server: Server, key: tuple[str, str]) -> BaseClient:
    client = s3_client(server, key)
    client.create_bucket(Bucket="sums")
    return client


@pytest.fixture(scope="module")
def presigner(server: Server, key: tuple[str, str]) -> BaseClient:
    return s3_client(server, key, signature_version="s3v4")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_stores_the_checksum_and_head_and_get_return_it(s3: BaseClient, algorithm: str) -> None:
    body = os.urandom(300_000)
    key = f"put/{algorithm}"
    put = s3.put_object(Bucket="sums", Key=key, Body=body, ChecksumAlgorithm=algorithm)
    expected = b64(algorithm, body)
    assert put[f"Checksum{algorithm}"] == expected
    head = s3.head_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected
    assert head["ChecksumType"] == "FULL_OBJECT"
    # botocore checks the body it reads against the checksum the answer carries.
    got = s3.get_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == expected
    assert got["Body"].read() == body
    plain = s3.head_object(Bucket="sums", Key=key)
    assert not any(name.startswith("Checksum") for name in plain)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_checksum_that_does_not_match_is_refused(s3: BaseClient, algorithm: str) -> None:
    wrong = b64(algorithm, b"something else")
    with pytest.raises(ClientError) as caught:
        s3.put_object(
            Bucket="sums", Key="wrong", Body=b"the body", **{f"Checksum{algorithm}": wrong}
        )
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket="sums", Key="wrong")
    assert caught.value.response["Error"]["Code"] == "404"


def test_a_malformed_checksum_or_two_of_them_are_invalid_requests(
    s3: BaseClient, presigner: BaseClient
) -> None:
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="sums", Key="bad", Body=b"x", ChecksumCRC32="not-a-crc")
    assert caught.value.response["Error"]["Code"] == "InvalidRequest"
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": "sums", "Key": "two"})
    headers = {"x-amz-checksum-crc32": b64("CRC32", b"x"), "x-amz-checksum-sha1": b64("SHA1", b"x")}
    answer = httpx.put(url, content=b"x", headers=headers)
    assert answer.status_code == 400
    assert "<Code>InvalidRequest</Code>" in answer.text
    assert "Multiple checksum Types" in answer.text


def test_an_object_written_without_a_checksum_gets_a_crc64nvme(
    s3: BaseClient, presigner: BaseClient
) -> None:
    body = os.urandom(10_000)
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": "sums", "Key": "plain"})
    assert httpx.put(url, content=body).status_code == 200
    head = s3.head_object(Bucket="sums", Key="plain", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == b64("CRC64NVME", body)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_multipart_parts_are_checked_and_the_object_gets_s3s_checksum(
    s3: BaseClient, algorithm: str
) -> None:
    key = f"multi/{algorithm}"
    parts = [os.urandom(5 * MB), os.urandom(1234)]
    upload = s3.create_multipart_upload(Bucket="sums", Key=key, ChecksumAlgorithm=algorithm)
    assert upload["ChecksumAlgorithm"] == algorithm
    kind = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    assert upload["ChecksumType"] == kind
    upload_id = upload["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        answer = s3.upload_part(
            Bucket="sums",
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=algorithm,
        )
        assert answer[f"Checksum{algorithm}"] == b64(algorithm, data)
        done.append(
            {
                "PartNumber": number,
                "ETag": answer["ETag"],
                f"Checksum{algorithm}": b64(algorithm, data),
            }
        )
    with pytest.raises(ClientError) as caught:
        s3.upload_part(
            Bucket="sums",
            Key=key,
            UploadId=upload_id,
            PartNumber=3,
            Body=b"other",
            ChecksumAlgorithm="SHA256" if algorithm != "SHA256" else "CRC32",
        )
    assert caught.value.response["Error"]["Code"] == "InvalidRequest"

    complete = s3.complete_multipart_upload(
        Bucket="sums", Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    if kind == "COMPOSITE":
        joined = b"".join(digest(algorithm, data) for data in parts)
        expected = f"{b64(algorithm, joined)}-{len(parts)}"
    else:
        expected = b64(algorithm, b"".join(parts))
    assert complete[f"Checksum{algorithm}"] == expected
    assert complete["ChecksumType"] == kind
    head = s3.head_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected
    assert head["ChecksumType"] == kind
    got = s3.get_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)


def test_full_object_crc32_and_a_part_checksum_that_does_not_match(s3: BaseClient) -> None:
    parts = [os.urandom(5 * MB), os.urandom(100)]
    upload_id = s3.create_multipart_upload(
        Bucket="sums", Key="full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        etag = s3.upload_part(
            Bucket="sums",
            Key="full",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
        )["ETag"]
        done.append({"PartNumber": number, "ETag": etag, "ChecksumCRC32": b64("CRC32", data)})
    wrong = [dict(done[0], ChecksumCRC32=b64("CRC32", b"no")), done[1]]
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(
            Bucket="sums", Key="full", UploadId=upload_id, MultipartUpload={"Parts": wrong}
        )
    assert caught.value.response["Error"]["Code"] == "InvalidPart"
    complete = s3.complete_multipart_upload(
        Bucket="sums", Key="full", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert complete["ChecksumCRC32"] == b64("CRC32", b"".join(parts))
    assert complete["ChecksumType"] == "FULL_OBJECT"


def test_a_copy_keeps_the_checksum_or_computes_the_one_asked_for(s3: BaseClient) -> None:
    body = os.urandom(50_000)
    s3.put_object(Bucket="sums", Key="source", Body=body, ChecksumAlgorithm="CRC32C")
    kept = s3.copy_object(
        Bucket="sums", Key="copy-kept", CopySource={"Bucket": "sums", "Key": "source"}
    )
    assert kept["CopyObjectResult"]["ChecksumCRC32C"] == b64("CRC32C", body)
    changed = s3.copy_object(
        Bucket="sums",
        Key="copy-sha",
        CopySource={"Bucket": "sums", "Key": "source"},
        ChecksumAlgorithm="SHA256",
    )
    assert changed["CopyObjectResult"]["ChecksumSHA256"] == b64("SHA256", body)
    head = s3.head_object(Bucket="sums", Key="copy-sha", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64("SHA256", body)


def chunked_put(
    server: Server, key: tuple[str, str], path: str, body: bytes, trailer: str
) -> httpx.Response:
    """A PUT whose body is aws-chunked with its checksum in the trailer, signed as
    the SDKs sign it (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``)."""
    name = trailer.split(":", 1)[0]
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "content-encoding": "aws-chunked",
        "x-amz-trailer": name,
        "x-amz-decoded-content-length": str(len(body)),
    }
    request = AWSRequest(method="PUT", url=f"{server.url}{path}", headers=headers, data=b"")
    # How botocore marks a request whose checksum goes in the trailer: it then signs
    # the streaming payload mode instead of a digest of the body.
    algorithm = name.removeprefix("x-amz-checksum-")
    request.context["checksum"] = {
        "request_algorithm": {"in": "trailer", "algorithm": algorithm, "name": name}
    }
    S3SigV4Auth(Credentials(*key), "s3", "us-east-1").add_auth(request)
    wire = f"{len(body):x}\r\n".encode() + body + f"\r\n0\r\n{trailer}\r\n\r\n".encode()
    return httpx.put(f"{server.url}{path}", content=wire, headers=dict(request.headers.items()))


def test_a_checksum_in_the_trailer_of_an_aws_chunked_body(
    s3: BaseClient, server: Server, key: tuple[str, str]
) -> None:
    body = os.urandom(70_000)
    good = chunked_put(
        server, key, "/sums/trailed", body, f"x-amz-checksum-crc32c:{b64('CRC32C', body)}"
    )
    assert good.status_code == 200, good.text
    assert good.headers["x-amz-checksum-crc32c"] == b64("CRC32C", body)
    head = s3.head_object(Bucket="sums", Key="trailed", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == b64("CRC32C", body)
    assert s3.get_object(Bucket="sums", Key="trailed")["Body"].read() == body

    bad = chunked_put(
        server, key, "/sums/trailed-bad", body, f"x-amz-checksum-sha256:{b64('SHA256', b'no')}"
    )
    assert bad.status_code == 400
    assert "<Code>BadDigest</Code>" in bad.text

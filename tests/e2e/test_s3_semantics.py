"""S3's semantics that unchanged AWS code relies on, against a running Triggerfish with
boto3 and raw HTTP: versions of an unversioned bucket, conditional requests, parts of
multipart objects, ACL and encryption answers, and the edges of the protocol."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import boto3
import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from support.lambda_api import new_key
from support.s3 import s3_client, s3_node
from support.server import Server

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with s3_node(tmp_path_factory.mktemp("s3-semantics")) as server:
        yield server


@pytest.fixture(scope="module")
def key(server: Server) -> tuple[str, str]:
    return new_key(server)


@pytest.fixture(scope="module")
def s3(server: Server, key: tuple[str, str]) -> BaseClient:
    return s3_client(server, key)


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response: Any = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def signed(
    server: Server,
    key: tuple[str, str],
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> dict[str, str]:
    """The headers of a request signed with Signature Version 4, as boto3 signs it."""
    request = AWSRequest(method=method, url=f"{server.url}{path}", data=body, headers=headers)
    request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    S3SigV4Auth(Credentials(*key), "s3", "us-east-1").add_auth(request)
    return {"host": server.url.split("://", 1)[1], **dict(request.headers.items())}


def xml(body: bytes) -> ET.Element:
    root = ET.fromstring(body)
    for element in root.iter():
        element.tag = element.tag.split("}", 1)[-1]
    return root


# -- versions of a bucket without versioning ---------------------------------------------


def test_object_versions_of_an_unversioned_bucket(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="versions")
    keys = ["a.txt", "logs/1.txt", "logs/2.txt", "logs/3.txt", "z.txt"]
    for name in keys:
        s3.put_object(Bucket="versions", Key=name, Body=name.encode())

    assert "Status" not in s3.get_bucket_versioning(Bucket="versions")
    listed = s3.list_object_versions(Bucket="versions", Delimiter="/")
    assert [v["Key"] for v in listed["Versions"]] == ["a.txt", "z.txt"]
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["logs/"]
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in listed["Versions"])
    assert listed["Versions"][0]["Size"] == len(b"a.txt")

    seen: list[str] = []
    marker = ""
    while True:
        page = s3.list_object_versions(
            Bucket="versions", Prefix="logs/", MaxKeys=2, KeyMarker=marker
        )
        seen += [v["Key"] for v in page["Versions"]]
        if not page["IsTruncated"]:
            break
        marker = page["NextKeyMarker"]
        assert page["NextVersionIdMarker"] == "null"
    assert seen == ["logs/1.txt", "logs/2.txt", "logs/3.txt"]

    got = s3.get_object(Bucket="versions", Key="a.txt", VersionId="null")
    assert got["Body"].read() == b"a.txt"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="versions", Key="a.txt", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert error_of(caught) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    assert error_of(caught) == (501, "NotImplemented")

    bucket = boto3.resource(
        "s3",
        endpoint_url=s3.meta.endpoint_url,
        aws_access_key_id=s3._request_signer._credentials.access_key,  # type: ignore[attr-defined]
        aws_secret_access_key=s3._request_signer._credentials.secret_key,  # type: ignore[attr-defined]
        region_name="us-east-1",
    ).Bucket("versions")
    bucket.object_versions.delete()
    assert s3.list_objects_v2(Bucket="versions")["KeyCount"] == 0
    s3.delete_bucket(Bucket="versions")


# -- conditional requests ----------------------------------------------------------------


def test_conditional_puts(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="conditional")
    first = s3.put_object(Bucket="conditional", Key="once", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="conditional", Key="once", Body=b"two", IfNoneMatch="*")
    assert error_of(caught) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket="conditional", Key="once")["Body"].read() == b"one"

    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="conditional", Key="once", Body=b"two", IfMatch='"0123"')
    assert error_of(caught) == (412, "PreconditionFailed")
    second = s3.put_object(Bucket="conditional", Key="once", Body=b"two", IfMatch=first["ETag"])
    assert s3.get_object(Bucket="conditional", Key="once")["ETag"] == second["ETag"]
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="conditional", Key="missing", Body=b"x", IfMatch=first["ETag"])
    assert error_of(caught) == (404, "NoSuchKey")


def test_only_one_of_concurrent_if_none_match_puts_wins(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="race")
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def put(n: int) -> None:
        start.wait()
        try:
            s3.put_object(Bucket="race", Key="claim", Body=f"writer {n}".encode(), IfNoneMatch="*")
            outcomes.append(f"writer {n}")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=put, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o.startswith("writer")]
    assert len(winners) == 1
    assert sorted(o for o in outcomes if not o.startswith("writer")) == ["PreconditionFailed"] * 7
    assert s3.get_object(Bucket="race", Key="claim")["Body"].read() == winners[0].encode()


def test_conditional_complete_and_a_repeated_complete(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="multipart-conditions")
    parts = [b"a" * (5 * MB), b"b" * MB]

    def upload() -> tuple[str, list[dict[str, Any]]]:
        upload_id = s3.create_multipart_upload(Bucket="multipart-conditions", Key="big")["UploadId"]
        done = []
        for number, data in enumerate(parts, 1):
            part = s3.upload_part(
                Bucket="multipart-conditions",
                Key="big",
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
            )
            done.append({"PartNumber": number, "ETag": part["ETag"]})
        return upload_id, done

    upload_id, done = upload()
    complete: dict[str, Any] = {
        "Bucket": "multipart-conditions",
        "Key": "big",
        "UploadId": upload_id,
        "MultipartUpload": {"Parts": done},
    }
    first = s3.complete_multipart_upload(**complete, IfNoneMatch="*")
    again = s3.complete_multipart_upload(**complete)
    assert again["ETag"] == first["ETag"]

    second_id, second_done = upload()
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(
            Bucket="multipart-conditions",
            Key="big",
            UploadId=second_id,
            MultipartUpload={"Parts": second_done},
            IfNoneMatch="*",
        )
    assert error_of(caught) == (412, "PreconditionFailed")
    # The refused upload is still there, to complete under another condition.
    assert [
        u["UploadId"] for u in s3.list_multipart_uploads(Bucket="multipart-conditions")["Uploads"]
    ] == [second_id]
    s3.complete_multipart_upload(
        Bucket="multipart-conditions",
        Key="big",
        UploadId=second_id,
        MultipartUpload={"Parts": second_done},
        IfMatch=first["ETag"],
    )
    # The first upload's object is gone: completing it again is no longer possible.
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(**complete)
    assert error_of(caught) == (404, "NoSuchUpload")


def test_conditional_gets_and_heads(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="conditional-get")
    etag = s3.put_object(Bucket="conditional-get", Key="k", Body=b"data")["ETag"]
    modified = s3.head_object(Bucket="conditional-get", Key="k")["LastModified"]
    before, after = modified - timedelta(hours=1), modified + timedelta(hours=1)

    assert s3.get_object(Bucket="conditional-get", Key="k", IfMatch=etag)["Body"].read() == b"data"
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as caught:
            call(Bucket="conditional-get", Key="k", IfMatch='"other"')
        assert error_of(caught)[0] == 412
        with pytest.raises(ClientError) as caught:
            call(Bucket="conditional-get", Key="k", IfNoneMatch=etag)
        assert error_of(caught)[0] == 304
        with pytest.raises(ClientError) as caught:
            call(Bucket="conditional-get", Key="k", IfModifiedSince=after)
        assert error_of(caught)[0] == 304
        with pytest.raises(ClientError) as caught:
            call(Bucket="conditional-get", Key="k", IfUnmodifiedSince=before)
        assert error_of(caught)[0] == 412
    # If-Match holding wins over If-Unmodified-Since failing; If-None-Match not matching
    # wins over If-Modified-Since failing; 412 goes before 304.
    got = s3.get_object(Bucket="conditional-get", Key="k", IfMatch=etag, IfUnmodifiedSince=before)
    assert got["Body"].read() == b"data"
    got = s3.get_object(Bucket="conditional-get", Key="k", IfNoneMatch='"x"', IfModifiedSince=after)
    assert got["Body"].read() == b"data"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="conditional-get", Key="k", IfMatch='"x"', IfNoneMatch=etag)
    assert error_of(caught) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket="conditional-get", Key="k", IfModifiedSince=before)["ETag"] == etag


def test_copy_source_conditions(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="conditional-copy")
    etag = s3.put_object(Bucket="conditional-copy", Key="src", Body=b"data")["ETag"]
    source = {"Bucket": "conditional-copy", "Key": "src"}
    later = datetime.now(UTC) + timedelta(hours=1)
    earlier = datetime.now(UTC) - timedelta(hours=1)
    refused: list[dict[str, Any]] = [
        {"CopySourceIfMatch": '"other"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": later},
        {"CopySourceIfUnmodifiedSince": earlier},
    ]
    for condition in refused:
        with pytest.raises(ClientError) as caught:
            s3.copy_object(Bucket="conditional-copy", Key="dst", CopySource=source, **condition)
        assert error_of(caught) == (412, "PreconditionFailed"), condition
    with pytest.raises(ClientError):
        s3.head_object(Bucket="conditional-copy", Key="dst")
    s3.copy_object(Bucket="conditional-copy", Key="dst", CopySource=source, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket="conditional-copy", Key="dst")["Body"].read() == b"data"


# -- objects as stored, and their parts --------------------------------------------------


def test_content_type_and_encoding_come_back_as_stored(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="types")
    s3.put_object(
        Bucket="types", Key="page", Body=b"<p>", ContentType="text/html", ContentEncoding="gzip"
    )
    got = s3.get_object(Bucket="types", Key="page")
    head = s3.head_object(Bucket="types", Key="page")
    assert (got["ContentType"], got["ContentEncoding"]) == ("text/html", "gzip")
    assert (head["ContentType"], head["ContentEncoding"]) == ("text/html", "gzip")


def test_part_numbers_and_object_attributes(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="parts")
    sizes = [5 * MB, 5 * MB + 7, 1000]
    upload_id = s3.create_multipart_upload(Bucket="parts", Key="big")["UploadId"]
    done = []
    for number, size in enumerate(sizes, 1):
        part = s3.upload_part(
            Bucket="parts",
            Key="big",
            UploadId=upload_id,
            PartNumber=number,
            Body=bytes([number]) * size,
        )
        done.append({"PartNumber": number, "ETag": part["ETag"]})
    etag = s3.complete_multipart_upload(
        Bucket="parts", Key="big", UploadId=upload_id, MultipartUpload={"Parts": done}
    )["ETag"]

    second = s3.get_object(Bucket="parts", Key="big", PartNumber=2)
    assert second["Body"].read() == b"\x02" * sizes[1]
    assert second["ContentRange"] == f"bytes {sizes[0]}-{sizes[0] + sizes[1] - 1}/{sum(sizes)}"
    assert second["PartsCount"] == 3
    head = s3.head_object(Bucket="parts", Key="big", PartNumber=3)
    assert head["ContentLength"] == 1000
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket="parts", Key="big", PartNumber=4)
    assert error_of(caught)[0] == 416

    attributes = s3.get_object_attributes(
        Bucket="parts",
        Key="big",
        ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "ObjectParts"],
    )
    assert attributes["ETag"] == etag.strip('"')
    assert attributes["ObjectSize"] == sum(sizes)
    assert attributes["StorageClass"] == "STANDARD"
    assert attributes["ObjectParts"]["TotalPartsCount"] == 3
    assert [p["Size"] for p in attributes["ObjectParts"]["Parts"]] == sizes
    paged = s3.get_object_attributes(
        Bucket="parts", Key="big", ObjectAttributes=["ObjectParts"], MaxParts=2
    )["ObjectParts"]
    assert ([p["PartNumber"] for p in paged["Parts"]], paged["IsTruncated"]) == ([1, 2], True)

    s3.put_object(Bucket="parts", Key="small", Body=b"12345")
    assert s3.get_object(Bucket="parts", Key="small", PartNumber=1)["Body"].read() == b"12345"
    small = s3.get_object_attributes(
        Bucket="parts", Key="small", ObjectAttributes=["ObjectSize", "ObjectParts"]
    )
    assert small["ObjectSize"] == 5
    assert "ObjectParts" not in small


# -- listings ----------------------------------------------------------------------------


def test_list_buckets_in_pages(s3: BaseClient) -> None:
    names = [f"paged-{n}" for n in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    seen: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = s3.list_buckets(MaxBuckets=2, Prefix="paged-", **token)
        assert len(page["Buckets"]) <= 2
        seen += [b["Name"] for b in page["Buckets"]]
        if "ContinuationToken" not in page:
            break
        token = {"ContinuationToken": page["ContinuationToken"]}
    assert seen == names


def test_list_objects_v1_echoes_its_prefix(
    server: Server, key: tuple[str, str], s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="v1-prefix")
    s3.put_object(Bucket="v1-prefix", Key="a b/c", Body=b"")
    path = "/v1-prefix?encoding-type=url&prefix=a%20b%2F"
    answer = httpx.get(f"{server.url}{path}", headers=signed(server, key, "GET", path))
    root = xml(answer.content)
    assert root.findtext("Prefix") == "a b/"
    assert root.findtext("Contents/Key") == "a%20b/c"
    assert s3.list_objects(Bucket="v1-prefix", Prefix="a b/")["Prefix"] == "a b/"


# -- metadata, keys, ACLs, encryption ----------------------------------------------------


def test_metadata_beyond_ascii_goes_out_rfc_2047_encoded(
    server: Server, key: tuple[str, str], s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="metadata")
    encoded = "=?UTF-8?B?" + base64.b64encode("Zoë".encode()).decode() + "?="
    s3.put_object(Bucket="metadata", Key="k", Body=b"", Metadata={"name": encoded, "plain": "ada"})
    got = s3.head_object(Bucket="metadata", Key="k")
    assert got["Metadata"] == {"name": encoded, "plain": "ada"}
    # The value is stored decoded: a copy with new metadata keeps the same answer.
    path = "/metadata/k"
    answer = httpx.head(f"{server.url}{path}", headers=signed(server, key, "HEAD", path))
    assert answer.headers["x-amz-meta-name"] == encoded


def test_a_key_that_is_not_utf_8_is_refused(
    server: Server, key: tuple[str, str], s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="keys")
    path = "/keys/bad%FFkey"
    answer = httpx.put(
        f"{server.url}{path}", content=b"x", headers=signed(server, key, "PUT", path, body=b"x")
    )
    assert answer.status_code == 400
    assert xml(answer.content).findtext("Code") in ("InvalidURI", "InvalidArgument")


def test_unsigned_requests_get_access_denied(server: Server) -> None:
    # An unsigned ``GET /`` is a browser's: the console answers it (docs/console.md).
    for method, path in (("GET", "/some-bucket"), ("PUT", "/some-bucket/key")):
        answer = httpx.request(method, f"{server.url}{path}")
        assert answer.status_code == 403, path
        assert answer.headers["content-type"].startswith("application/xml")
        assert xml(answer.content).findtext("Code") == "AccessDenied"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_acls_are_the_owners_and_only_private_is_accepted(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="acls")
    s3.put_object(Bucket="acls", Key="k", Body=b"", ACL="private")
    for acl in (s3.get_bucket_acl(Bucket="acls"), s3.get_object_acl(Bucket="acls", Key="k")):
        [grant] = acl["Grants"]
        assert grant["Permission"] == "FULL_CONTROL"
        assert grant["Grantee"]["ID"] == acl["Owner"]["ID"]
    s3.put_bucket_acl(Bucket="acls", ACL="private")
    s3.put_object_acl(Bucket="acls", Key="k", ACL="private")
    for call in (
        lambda: s3.put_object(Bucket="acls", Key="k2", Body=b"", ACL="public-read"),
        lambda: s3.put_bucket_acl(Bucket="acls", ACL="public-read"),
        lambda: s3.put_object_acl(Bucket="acls", Key="k", ACL="authenticated-read"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert error_of(caught) == (400, "AccessControlListNotSupported")
    with pytest.raises(ClientError):
        s3.head_object(Bucket="acls", Key="k2")


def test_server_side_encryption_is_refused_not_ignored(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="encryption")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="encryption", Key="k", Body=b"x", ServerSideEncryption="AES256")
    assert error_of(caught) == (501, "NotImplemented")
    assert "encrypt" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket="encryption", Key="k")
    assert error_of(caught)[0] == 404


# -- the connection ----------------------------------------------------------------------


def test_an_error_to_an_expect_100_continue_put_keeps_the_connection(
    server: Server, key: tuple[str, str], s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="expect")
    s3.put_object(Bucket="expect", Key="taken", Body=b"first")
    body = b"x" * 100_000
    path = "/expect/taken"
    headers = signed(
        server,
        key,
        "PUT",
        path,
        headers={"Expect": "100-continue", "If-None-Match": "*", "Content-Length": str(len(body))},
        body=body,
    )
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers.items())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n")  # no body: the client waits for 100 Continue
        first = _response(sock)
        assert first[0] == 412, first
        assert b"PreconditionFailed" in first[2]
        assert first[1].get("connection") != "close"
        sock.sendall(f"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        second = _response(sock)
        assert second[0] == 200
        assert b'"status"' in second[2]


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in data:
        assert time.monotonic() < deadline
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]

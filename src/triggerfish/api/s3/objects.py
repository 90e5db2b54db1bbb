"""Object operations: PutObject, GetObject (ranges, conditions), HeadObject,
DeleteObject, CopyObject, and the multipart upload calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import parse_qsl, unquote

from starlette.responses import Response, StreamingResponse

from triggerfish.api.s3 import checksums
from triggerfish.api.s3.attributes import part_range
from triggerfish.api.s3.conditions import copy_source_check, read_precondition, write_condition
from triggerfish.api.s3.metadata import sent_value, stored_value
from triggerfish.api.s3.request import MAX_PART_SIZE, S3Request
from triggerfish.api.s3.xml import Node, http_time, iso_time, parse, xml_response
from triggerfish.sources.buckets import (
    BucketStore,
    InvalidObjectError,
    NewObject,
    ObjectRow,
)
from triggerfish.sources.buckets.blobs import BlobReader, BlobWriter
from triggerfish.sources.buckets.checksums import Hasher

#: Headers stored with an object and returned as they were given.
STORED_HEADERS = (
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


def quoted(etag: str) -> str:
    return f'"{etag}"'


def new_object(req: S3Request) -> NewObject:
    metadata = {
        name[len("x-amz-meta-") :]: stored_value(value)
        for name, value in req.headers.items()
        if name.startswith("x-amz-meta-")
    }
    headers = {name: req.headers[name] for name in STORED_HEADERS if name in req.headers}
    encoding = headers.get("content-encoding")
    if encoding is not None:
        # aws-chunked describes the transfer, not the object: S3 drops it.
        kept = [e.strip() for e in encoding.split(",") if e.strip() and e.strip() != "aws-chunked"]
        if kept:
            headers["content-encoding"] = ",".join(kept)
        else:
            del headers["content-encoding"]
    content_type = req.headers.get("content-type") or "binary/octet-stream"
    return NewObject(content_type, metadata, headers)


def object_headers(row: ObjectRow) -> dict[str, str]:
    headers = {
        "etag": quoted(row.etag),
        "last-modified": http_time(row.modified),
        "content-type": row.content_type,
        "accept-ranges": "bytes",
        **row.headers,
    }
    for name, value in row.metadata.items():
        headers[f"x-amz-meta-{name}"] = sent_value(value)
    if "-" in row.etag:
        headers["x-amz-mp-parts-count"] = row.etag.rsplit("-", 1)[1]
    return headers


def parse_range(text: str, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for ``bytes=a-b``, ``bytes=a-``, ``bytes=-n``; None to
    send the whole object (an unparseable range is ignored, as S3 does)."""
    unit, _, spec = text.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first_text, _, last_text = spec.strip().partition("-")
    try:
        if first_text == "":
            length = int(last_text)
            if length <= 0:
                raise _unsatisfiable(size)
            return max(0, size - length), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first > last:
        return None
    if first >= size:
        raise _unsatisfiable(size)
    return first, min(last, size - 1)


def _unsatisfiable(size: int) -> InvalidObjectError:
    return InvalidObjectError(
        "InvalidRange", f"The requested range is not satisfiable (size {size})", status=416
    )


async def _stream(handle: BlobReader, first: int, length: int) -> AsyncIterator[bytes]:
    try:
        async for data in handle.stream(first, length):
            yield data
    finally:
        await handle.aclose()


async def get_object(store: BucketStore, req: S3Request, *, head: bool) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    if head:
        row = await store.head_object(req.bucket, req.key)
        handle = None
    else:
        row, handle = await store.open_object(req.bucket, req.key)
    try:
        early = read_precondition(req, row)
        headers = object_headers(row)
        params = req.params
        for name, header in RESPONSE_OVERRIDES.items():
            if name in params:
                headers[header] = params[name]
        status, first, length = 200, 0, row.size
        wanted = req.headers.get("range")
        if "partNumber" in params and early is None:
            first, last = part_range(req, row)
            status, length = 206, last - first + 1
            headers["content-range"] = f"bytes {first}-{last}/{row.size}"
        elif wanted and early is None:
            span = parse_range(wanted, row.size)
            if span is not None:
                first, last = span
                status, length = 206, last - first + 1
                headers["content-range"] = f"bytes {first}-{last}/{row.size}"
        if status == 200 and checksums.wanted(req.headers):
            headers.update(checksums.response_headers(row.checksum))
    except BaseException:
        if handle is not None:
            await handle.aclose()
        raise
    if early is not None or handle is None:
        if handle is not None:
            await handle.aclose()
        if early is not None:
            return early
        headers["content-length"] = str(length)
        return Response(status_code=status, headers=headers)
    headers["content-length"] = str(length)
    # The content type goes out as stored: given as a media type, a text/* one would
    # gain a charset.
    return StreamingResponse(_stream(handle, first, length), status_code=status, headers=headers)


async def put_object(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    if "x-amz-copy-source" in req.headers:
        return await copy_object(store, req)
    await store.check_bucket(req.bucket)
    condition = write_condition(req)
    if condition is not None:  # refused before the bytes are sent, and checked again
        await store.check_condition(req.bucket, req.key, condition)
    writer = store.writer()
    try:
        await req.read_into(writer, keep=checksums.put_algorithm(req.headers))
    except BaseException:
        await store.discard(writer)
        raise
    row = await store.put_object(
        req.bucket,
        req.key,
        writer,
        replace(new_object(req), checksum=req.checksum),
        actor=req.actor(),
        condition=condition,
    )
    return Response(headers={"etag": quoted(row.etag), **checksums.response_headers(row.checksum)})


def copy_source(req: S3Request) -> tuple[str, str]:
    path, _, query = req.headers["x-amz-copy-source"].partition("?")
    try:
        text = unquote(path, errors="strict").lstrip("/")
    except UnicodeDecodeError:
        raise InvalidObjectError(
            "InvalidArgument", "Copy Source is not valid UTF-8 once percent-decoded"
        ) from None
    version = dict(parse_qsl(query)).get("versionId")
    if version is not None and version != "null":  # every object's one version
        raise InvalidObjectError("InvalidArgument", "Invalid version id specified")
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise InvalidObjectError(
            "InvalidArgument", "Copy Source must mention the source bucket and key: bucket/key"
        )
    return bucket, key


async def copy_object(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    directive = req.headers.get("x-amz-metadata-directive", "COPY").upper()
    new = new_object(req) if directive == "REPLACE" else None
    row = await store.copy_object(
        copy_source(req),
        req.bucket,
        req.key,
        new,
        actor=req.actor(),
        source_check=copy_source_check(req),
        condition=write_condition(req),
        checksum=checksums.copy_algorithm(req.headers),
    )
    children: list[Node] = [("LastModified", iso_time(row.modified)), ("ETag", quoted(row.etag))]
    children += checksums.nodes(row.checksum)
    return xml_response("CopyObjectResult", children)


async def delete_object(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    await store.delete_objects(req.bucket, [req.key], actor=req.actor())
    return Response(status_code=204)


# -- multipart -------------------------------------------------------------------------


async def create_upload(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    chosen = checksums.upload_choice(req.headers)
    new = replace(new_object(req), checksum=chosen)
    upload_id = await store.create_upload(req.bucket, req.key, new)
    children: list[Node] = [("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload_id)]
    headers = {}
    if chosen is not None:
        headers = {"x-amz-checksum-algorithm": chosen.algorithm, "x-amz-checksum-type": chosen.type}
    return xml_response("InitiateMultipartUploadResult", children, headers=headers)


def part_number(req: S3Request) -> int:
    try:
        return int(req.params["partNumber"])
    except ValueError:
        raise InvalidObjectError(
            "InvalidArgument", "Part number must be an integer between 1 and 10000"
        ) from None


async def upload_part(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    number = part_number(req)
    upload_id = req.params["uploadId"]
    upload = await store.upload(req.bucket, req.key, upload_id)
    algorithm = checksums.part_algorithm(upload.checksum, req.headers)
    writer = store.writer()
    try:
        if "x-amz-copy-source" in req.headers:
            hasher = Hasher(algorithm)
            await _copy_part(store, req, writer, hasher)
            req.checksum = hasher.checksum()
        else:
            await req.read_into(writer, limit=MAX_PART_SIZE, keep=algorithm)
    except BaseException:
        await store.discard(writer)
        raise
    part = await store.put_part(
        req.bucket, req.key, upload_id, number, writer, checksum=req.checksum
    )
    shown = part.checksum if upload.checksum is not None else None
    if "x-amz-copy-source" in req.headers:
        children: list[Node] = [
            ("LastModified", iso_time(part.modified)),
            ("ETag", quoted(part.etag)),
            *checksums.nodes(shown, with_type=False),
        ]
        return xml_response("CopyPartResult", children)
    headers = {"etag": quoted(part.etag), **checksums.response_headers(shown, with_type=False)}
    return Response(headers=headers)


async def _copy_part(
    store: BucketStore, req: S3Request, writer: BlobWriter, hasher: Hasher
) -> None:
    row, handle = await store.open_object(*copy_source(req))
    check = copy_source_check(req)
    if check is not None:
        try:
            check(row)
        except BaseException:
            await handle.aclose()
            raise
    first, length = 0, row.size
    wanted = req.headers.get("x-amz-copy-source-range")
    if wanted:
        span = parse_range(wanted, row.size)
        if span is None:
            await handle.aclose()
            raise InvalidObjectError("InvalidArgument", "The x-amz-copy-source-range is invalid")
        first, length = span[0], span[1] - span[0] + 1
    async for data in _stream(handle, first, length):
        writer.write(data)
        hasher.update(data)


async def complete_upload(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    root = parse(await req.read_small(checksum=False))
    part_checksums, full_checksum = checksums.completion(root, req.headers)
    chosen: list[tuple[int, str]] = []
    for part in root.findall("Part"):
        number, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise InvalidObjectError("MalformedXML", "Each Part needs a PartNumber and an ETag")
        chosen.append((int(number), etag.strip()))
    row = await store.complete_upload(
        req.bucket,
        req.key,
        req.params["uploadId"],
        chosen,
        actor=req.actor(),
        condition=write_condition(req),
        part_checksums=part_checksums,
        full_checksum=full_checksum,
    )
    location = f"{str(req.request.base_url).rstrip('/')}{req.resource}"
    children: list[Node] = [
        ("Location", location),
        ("Bucket", req.bucket),
        ("Key", req.key),
        ("ETag", quoted(row.etag)),
        *checksums.nodes(row.checksum),
    ]
    return xml_response("CompleteMultipartUploadResult", children)


async def abort_upload(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    await store.abort_upload(req.bucket, req.key, req.params["uploadId"])
    return Response(status_code=204)


async def list_parts(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    upload_id = req.params["uploadId"]
    parts = await store.list_parts(req.bucket, req.key, upload_id)
    children: list[Node] = [
        ("Bucket", req.bucket),
        ("Key", req.key),
        ("UploadId", upload_id),
        ("PartNumberMarker", 0),
        ("NextPartNumberMarker", parts[-1].number if parts else 0),
        ("MaxParts", 10000),
        ("IsTruncated", False),
    ]
    for part in parts:
        children.append(
            (
                "Part",
                [
                    ("PartNumber", part.number),
                    ("LastModified", iso_time(part.modified)),
                    ("ETag", quoted(part.etag)),
                    ("Size", part.size),
                ],
            )
        )
    return xml_response("ListPartsResult", children)

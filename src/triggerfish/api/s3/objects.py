"""Object operations: PutObject, GetObject (ranges, conditions), HeadObject,
DeleteObject, CopyObject, and the multipart upload calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote

from starlette.responses import Response, StreamingResponse

from triggerfish.api.s3.request import MAX_PART_SIZE, S3Request
from triggerfish.api.s3.xml import Node, http_time, iso_time, parse, xml_response
from triggerfish.sources.buckets import (
    BucketStore,
    InvalidObjectError,
    NewObject,
    ObjectRow,
)
from triggerfish.sources.buckets.blobs import BlobReader, BlobWriter

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
        name[len("x-amz-meta-") :]: value
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
        headers[f"x-amz-meta-{name}"] = value
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


def _precondition(req: S3Request, row: ObjectRow) -> Response | None:
    etag = quoted(row.etag)
    if_match = req.headers.get("if-match")
    if if_match and if_match.strip() not in (etag, "*", row.etag):
        raise InvalidObjectError(
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            status=412,
        )
    if_none = req.headers.get("if-none-match")
    if if_none and if_none.strip() in (etag, "*", row.etag):
        return Response(status_code=304, headers={"etag": etag})
    return None


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
        early = _precondition(req, row)
        headers = object_headers(row)
        params = req.params
        for name, header in RESPONSE_OVERRIDES.items():
            if name in params:
                headers[header] = params[name]
        status, first, length = 200, 0, row.size
        wanted = req.headers.get("range")
        if wanted and early is None:
            span = parse_range(wanted, row.size)
            if span is not None:
                first, last = span
                status, length = 206, last - first + 1
                headers["content-range"] = f"bytes {first}-{last}/{row.size}"
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
    media = headers.pop("content-type")
    return StreamingResponse(
        _stream(handle, first, length), status_code=status, headers=headers, media_type=media
    )


async def put_object(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    if "x-amz-copy-source" in req.headers:
        return await copy_object(store, req)
    await store.check_bucket(req.bucket)
    writer = store.writer()
    try:
        await req.read_into(writer)
    except BaseException:
        await store.discard(writer)
        raise
    row = await store.put_object(req.bucket, req.key, writer, new_object(req), actor=req.actor())
    return Response(headers={"etag": quoted(row.etag)})


def copy_source(req: S3Request) -> tuple[str, str]:
    text = unquote(req.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
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
    row = await store.copy_object(copy_source(req), req.bucket, req.key, new, actor=req.actor())
    children: list[Node] = [("LastModified", iso_time(row.modified)), ("ETag", quoted(row.etag))]
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
    upload_id = await store.create_upload(req.bucket, req.key, new_object(req))
    children: list[Node] = [("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload_id)]
    return xml_response("InitiateMultipartUploadResult", children)


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
    writer = store.writer()
    try:
        if "x-amz-copy-source" in req.headers:
            await _copy_part(store, req, writer)
        else:
            await req.read_into(writer, limit=MAX_PART_SIZE)
    except BaseException:
        await store.discard(writer)
        raise
    part = await store.put_part(req.bucket, req.key, upload_id, number, writer)
    if "x-amz-copy-source" in req.headers:
        children: list[Node] = [
            ("LastModified", iso_time(part.modified)),
            ("ETag", quoted(part.etag)),
        ]
        return xml_response("CopyPartResult", children)
    return Response(headers={"etag": quoted(part.etag)})


async def _copy_part(store: BucketStore, req: S3Request, writer: BlobWriter) -> None:
    row, handle = await store.open_object(*copy_source(req))
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


async def complete_upload(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    root = parse(await req.read_small())
    chosen: list[tuple[int, str]] = []
    for part in root.findall("Part"):
        number, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise InvalidObjectError("MalformedXML", "Each Part needs a PartNumber and an ETag")
        chosen.append((int(number), etag.strip()))
    row = await store.complete_upload(
        req.bucket, req.key, req.params["uploadId"], chosen, actor=req.actor()
    )
    location = f"{str(req.request.base_url).rstrip('/')}{req.resource}"
    children: list[Node] = [
        ("Location", location),
        ("Bucket", req.bucket),
        ("Key", req.key),
        ("ETag", quoted(row.etag)),
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

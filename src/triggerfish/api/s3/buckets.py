"""Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
GetBucketLocation, ListObjects (v1 and v2), DeleteObjects, ListMultipartUploads."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.responses import Response

from triggerfish.api.s3.access import require_key, visible
from triggerfish.api.s3.objects import quoted
from triggerfish.api.s3.request import S3Request
from triggerfish.api.s3.xml import NAMESPACE, XML_TYPE, Node, iso_time, parse, xml_response
from triggerfish.security.permissions import S3_WRITE
from triggerfish.sources.buckets import BucketStore, InvalidObjectError, Listing
from triggerfish.sources.buckets.notifications import OWNER

OWNER_NODE: Node = ("Owner", [("ID", OWNER), ("DisplayName", OWNER)])
MAX_DELETE = 1000
MAX_BUCKETS = 10000
NULL = "null"  # the version id of every object


async def list_buckets(store: BucketStore, req: S3Request) -> Response:
    params = req.params
    prefix = params.get("prefix", "")
    token = params.get("continuation-token")
    after = _untoken(token) if token else ""
    limit = _number(params.get("max-buckets", str(MAX_BUCKETS)), "max-buckets")
    if not 1 <= limit <= MAX_BUCKETS:
        raise InvalidObjectError("InvalidArgument", f"max-buckets must be 1 to {MAX_BUCKETS}")
    names = [
        (name, created)
        for name, created in await store.list_buckets()
        if name > after and name.startswith(prefix) and visible(req, name)
    ]
    page = names[:limit]
    buckets: list[Node] = [
        ("Bucket", [("Name", name), ("CreationDate", iso_time(created))]) for name, created in page
    ]
    children: list[Node] = [OWNER_NODE, ("Buckets", buckets)]
    if len(names) > limit:
        children.append(("ContinuationToken", _token(page[-1][0])))
    if "prefix" in params:
        children.append(("Prefix", prefix))
    return xml_response("ListAllMyBucketsResult", children)


async def create_bucket(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    body = await req.read_small()
    if body.strip():
        parse(body)  # CreateBucketConfiguration: any LocationConstraint is accepted
    await store.create_bucket(req.bucket)
    return Response(headers={"location": f"/{req.bucket}"})


async def delete_bucket(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    await store.delete_bucket(req.bucket)
    return Response(status_code=204)


async def head_bucket(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    await store.check_bucket(req.bucket)
    return Response(headers={"x-amz-bucket-region": store.region})


async def bucket_location(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    await store.check_bucket(req.bucket)
    # S3 answers an empty constraint for us-east-1.
    region = "" if store.region == "us-east-1" else escape(store.region)
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<LocationConstraint xmlns="{NAMESPACE}">{region}</LocationConstraint>'
    )
    return Response(body, media_type=XML_TYPE)


def _number(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidObjectError("InvalidArgument", f"{name} must be an integer") from None


def max_keys(req: S3Request) -> int:
    value = _number(req.params.get("max-keys", "1000"), "max-keys")
    if value < 0:
        raise InvalidObjectError("InvalidArgument", "max-keys must not be negative")
    return min(value, 1000)


def _token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii")


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidObjectError(
            "InvalidArgument", "The continuation token provided is incorrect"
        ) from None


async def list_objects(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    params = req.params
    v2 = params.get("list-type") == "2"
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    encode = params.get("encoding-type") == "url"
    limit = max_keys(req)

    def text(value: str) -> str:
        return quote(value, safe="/") if encode else value

    if v2:
        token = params.get("continuation-token")
        after = _untoken(token) if token else params.get("start-after", "")
    else:
        after = params.get("marker", "")
    listing = await listed(store, req.bucket, prefix, delimiter, after, limit)
    children: list[Node] = [
        ("Name", req.bucket),
        # ListObjects (v1) echoes the prefix as sent, even with encoding-type=url.
        ("Prefix", text(prefix) if v2 else prefix),
    ]
    if v2:
        children.append(("KeyCount", len(listing.objects) + len(listing.prefixes)))
        if "continuation-token" in params:
            children.append(("ContinuationToken", params["continuation-token"]))
        if "start-after" in params:
            children.append(("StartAfter", text(params["start-after"])))
        if listing.truncated:
            children.append(("NextContinuationToken", _token(listing.last)))
    else:
        children.append(("Marker", text(after)))
        if listing.truncated:
            children.append(("NextMarker", text(listing.last)))
    owner = not v2 or params.get("fetch-owner") == "true"
    contents: list[Node] = []
    for row in listing.objects:
        entry: list[Node] = [
            ("Key", text(row.key)),
            ("LastModified", iso_time(row.modified)),
            ("ETag", quoted(row.etag)),
            ("Size", row.size),
            ("StorageClass", "STANDARD"),
        ]
        if owner:
            entry.append(OWNER_NODE)
        contents.append(("Contents", entry))
    children += listing_nodes(listing, contents, limit, delimiter, encode, text)
    return xml_response("ListBucketResult", children)


async def listed(
    store: BucketStore, bucket: str, prefix: str, delimiter: str, after: str, limit: int
) -> Listing:
    """A page of ``bucket``'s keys after ``after``; none for a limit of 0, as S3."""
    if not limit:
        return Listing([], [], False, after)
    return await store.list_objects(
        bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=limit
    )


def listing_nodes(
    listing: Listing,
    entries: list[Node],
    limit: int,
    delimiter: str,
    encode: bool,
    text: Callable[[str], str],
) -> list[Node]:
    """What every listing ends with: its bounds, the entries made of ``listing``'s
    objects, and its common prefixes (``text`` encodes a key as the request asked)."""
    nodes: list[Node] = [("MaxKeys", limit)]
    if delimiter:
        nodes.append(("Delimiter", text(delimiter)))
    if encode:
        nodes.append(("EncodingType", "url"))
    nodes.append(("IsTruncated", listing.truncated))
    nodes += entries
    nodes += [("CommonPrefixes", [("Prefix", text(common))]) for common in listing.prefixes]
    return nodes


async def delete_objects(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    root = parse(await req.read_small())
    quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
    objects = root.findall("Object")
    keys = [(item.findtext("Key") or "") for item in objects]
    versions = [item.findtext("VersionId") for item in objects]
    if not keys or len(keys) > MAX_DELETE:
        raise InvalidObjectError(
            "MalformedXML", f"a Delete request names 1 to {MAX_DELETE} objects"
        )
    if any(not key for key in keys):
        raise InvalidObjectError("MalformedXML", "every Object needs a Key")
    for key in keys:
        require_key(req, S3_WRITE, key)
    # Every object has the one version "null" (see ``versions``): another is not found.
    chosen = [key for key, version in zip(keys, versions, strict=True) if version in (None, NULL)]
    await store.delete_objects(req.bucket, chosen, actor=req.actor())
    children: list[Node] = []
    for key, version in zip(keys, versions, strict=True):
        if version not in (None, NULL):
            message = "The specified version does not exist."
            error = [("Key", key), ("VersionId", version), ("Code", "NoSuchVersion")]
            children.append(("Error", [*error, ("Message", message)]))
        elif not quiet:
            children.append(("Deleted", [("Key", key), ("VersionId", version)]))
    return xml_response("DeleteResult", children)


async def list_uploads(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    uploads = await store.list_uploads(req.bucket)
    prefix = req.params.get("prefix", "")
    children: list[Node] = [
        ("Bucket", req.bucket),
        ("KeyMarker", ""),
        ("UploadIdMarker", ""),
        ("MaxUploads", 1000),
        ("IsTruncated", False),
    ]
    for upload in uploads:
        if not upload.key.startswith(prefix):
            continue
        children.append(
            (
                "Upload",
                [
                    ("Key", upload.key),
                    ("UploadId", upload.id),
                    ("Initiator", [("ID", OWNER), ("DisplayName", OWNER)]),
                    OWNER_NODE,
                    ("StorageClass", "STANDARD"),
                    ("Initiated", iso_time(upload.created)),
                ],
            )
        )
    return xml_response("ListMultipartUploadsResult", children)

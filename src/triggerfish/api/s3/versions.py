"""S3's versioning calls, answered for buckets that keep one version of each key.

Triggerfish does not keep versions: every bucket is as an S3 bucket on which
versioning was never enabled. GetBucketVersioning answers the empty configuration S3
answers for such a bucket; ListObjectVersions lists the current objects, each with the
version id ``null`` and ``IsLatest`` true, paged by ``key-marker``; the object calls
take ``versionId=null`` as the object itself (``check_version``). Enabling versioning
is refused rather than accepted and ignored.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response

from triggerfish.api.s3.buckets import NULL, OWNER_NODE, listed, listing_nodes, max_keys
from triggerfish.api.s3.objects import quoted
from triggerfish.api.s3.request import S3Request
from triggerfish.api.s3.xml import Node, iso_time, xml_response
from triggerfish.sources.buckets import BucketStore, InvalidObjectError


def check_version(version_id: str | None) -> None:
    """Refuse a version id other than ``null``, the only version of every object."""
    if version_id is not None and version_id != NULL:
        raise InvalidObjectError("InvalidArgument", "Invalid version id specified")


async def get_bucket_versioning(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    await store.check_bucket(req.bucket)
    return xml_response("VersioningConfiguration", [])


async def put_bucket_versioning(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    await store.check_bucket(req.bucket)
    raise InvalidObjectError(
        "NotImplemented",
        "Triggerfish keeps one version of each object: versioning cannot be enabled or "
        "suspended. Objects list with the version id 'null', as in an S3 bucket that never "
        "had versioning.",
        status=501,
    )


async def list_object_versions(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    params = req.params
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    encode = params.get("encoding-type") == "url"
    key_marker = params.get("key-marker", "")
    check_version(params.get("version-id-marker") or None)
    limit = max_keys(req)

    def text(value: str) -> str:
        return quote(value, safe="/") if encode else value

    listing = await listed(store, req.bucket, prefix, delimiter, key_marker, limit)
    children: list[Node] = [
        ("Name", req.bucket),
        ("Prefix", text(prefix)),
        ("KeyMarker", text(key_marker)),
        ("VersionIdMarker", params.get("version-id-marker", "")),
    ]
    if listing.truncated:
        children += [("NextKeyMarker", text(listing.last)), ("NextVersionIdMarker", NULL)]
    versions: list[Node] = [
        (
            "Version",
            [
                ("Key", text(row.key)),
                ("VersionId", NULL),
                ("IsLatest", True),
                ("LastModified", iso_time(row.modified)),
                ("ETag", quoted(row.etag)),
                ("Size", row.size),
                ("StorageClass", "STANDARD"),
                OWNER_NODE,
            ],
        )
        for row in listing.objects
    ]
    children += listing_nodes(listing, versions, limit, delimiter, encode, text)
    return xml_response("ListVersionsResult", children)

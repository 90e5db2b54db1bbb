"""What S3 tells about an object's parts: GetObject and HeadObject with ``partNumber``
(the bytes of one part of a multipart object; part 1 is the whole of any other
object), and GetObjectAttributes (ETag, ObjectSize, StorageClass, ObjectParts).

A multipart object knows the sizes of its parts; one completed before Triggerfish
recorded them knows only how many there are, and answers ``partNumber`` with an error
saying so."""

from __future__ import annotations

from starlette.responses import Response

from triggerfish.api.s3 import checksums
from triggerfish.api.s3.request import S3Request
from triggerfish.api.s3.xml import Node, http_time, xml_response
from triggerfish.sources.buckets import BucketStore, InvalidObjectError, ObjectRow

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def parts_count(row: ObjectRow) -> int | None:
    """How many parts a multipart object has; None for any other object."""
    if "-" not in row.etag:
        return None
    return int(row.etag.rsplit("-", 1)[1])


def _number(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidObjectError("InvalidArgument", f"{name} must be a non-negative integer")
    return value


def part_range(req: S3Request, row: ObjectRow) -> tuple[int, int]:
    """(first, last) inclusive: the bytes of the part that ``partNumber`` names."""
    if "range" in req.headers:
        raise InvalidObjectError(
            "InvalidRequest", "Cannot specify both Range header and partNumber query parameter"
        )
    number = _number(req.params["partNumber"], "partNumber")
    if not 1 <= number <= 10000:
        raise InvalidObjectError(
            "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive"
        )
    count = parts_count(row)
    if number > (count or 1):
        raise InvalidObjectError(
            "InvalidPartNumber", "The requested partnumber is not satisfiable", status=416
        )
    if count is None:
        return 0, row.size - 1
    if len(row.parts) != count:
        raise InvalidObjectError(
            "InvalidRequest",
            "The sizes of this object's parts are not known: it was completed by an earlier "
            "version of Triggerfish. Ask for a Range instead, or copy the object onto itself.",
        )
    first = sum(row.parts[: number - 1])
    return first, first + row.parts[number - 1] - 1


def checksum_node(row: ObjectRow) -> Node | None:
    """The ``Checksum`` element of GetObjectAttributes, for an object stored with a
    checksum; None (the element left out) for one stored without."""
    found = checksums.nodes(row.checksum)
    return ("Checksum", found) if found else None


def _parts_node(req: S3Request, row: ObjectRow) -> Node | None:
    count = parts_count(row)
    if count is None:
        return None
    children: list[Node] = [("PartsCount", count)]
    if len(row.parts) != count:
        return ("ObjectParts", children)
    marker = _number(req.headers.get("x-amz-part-number-marker", "0"), "PartNumberMarker")
    limit = min(_number(req.headers.get("x-amz-max-parts", "1000"), "MaxParts"), MAX_PARTS)
    numbers = list(range(marker + 1, count + 1))
    shown, truncated = numbers[:limit], len(numbers) > limit
    children += [
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", shown[-1] if shown else marker),
        ("MaxParts", limit),
        ("IsTruncated", truncated),
    ]
    children += [("Part", [("PartNumber", n), ("Size", row.parts[n - 1])]) for n in shown]
    return ("ObjectParts", children)


async def get_object_attributes(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    assert req.key is not None
    wanted = {
        name.strip()
        for name in req.headers.get("x-amz-object-attributes", "").split(",")
        if name.strip()
    }
    unknown = wanted - set(ATTRIBUTES)
    if not wanted or unknown:
        raise InvalidObjectError(
            "InvalidArgument",
            "x-amz-object-attributes must name one or more of " + ", ".join(ATTRIBUTES),
        )
    row = await store.head_object(req.bucket, req.key)
    found: dict[str, Node | None] = {
        "ETag": ("ETag", row.etag),
        "Checksum": checksum_node(row),
        "ObjectParts": _parts_node(req, row) if "ObjectParts" in wanted else None,
        "StorageClass": ("StorageClass", "STANDARD"),
        "ObjectSize": ("ObjectSize", row.size),
    }
    children = [node for name in ATTRIBUTES if name in wanted and (node := found[name])]
    return xml_response(
        "GetObjectAttributesResponse",
        children,
        headers={"last-modified": http_time(row.modified)},
    )

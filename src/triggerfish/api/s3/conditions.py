"""S3's conditional requests.

- GetObject and HeadObject: ``If-Match``, ``If-None-Match``, ``If-Modified-Since`` and
  ``If-Unmodified-Since``, evaluated as S3 applies RFC 7232: ``If-Match`` (or, without
  it, ``If-Unmodified-Since``) failing answers 412; otherwise ``If-None-Match`` matching
  (or, without it, ``If-Modified-Since`` not modified) answers 304.
- CopyObject and UploadPartCopy: the same four about the source, as
  ``x-amz-copy-source-if-*``; any of them failing answers 412.
- PutObject, CopyObject and CompleteMultipartUpload: ``If-None-Match: *`` (only when the
  key has no object) and ``If-Match: <etag>`` (only when it has this one; 404 when it has
  none), checked by the store in the transaction of the write
  (``sources.buckets.conditions``).
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime

from starlette.responses import Response

from triggerfish.api.s3.request import S3Request
from triggerfish.api.s3.xml import http_time
from triggerfish.sources.buckets import InvalidObjectError, ObjectRow
from triggerfish.sources.buckets.conditions import WriteCondition
from triggerfish.sources.buckets.errors import PreconditionFailedError


def etags(value: str) -> tuple[str, ...]:
    """The ETags of an ``If-Match``/``If-None-Match`` list, unquoted; ``*`` kept."""
    found = []
    for item in value.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        item = item.strip('"')
        if item:
            found.append(item)
    return tuple(found)


def _matches(value: str, row: ObjectRow) -> bool:
    wanted = etags(value)
    return "*" in wanted or row.etag in wanted


def _since(value: str | None) -> float | None:
    """The moment of an HTTP date; None when absent or not a date (then S3 ignores it)."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _modified_after(row: ObjectRow, since: float) -> bool:
    # Last-Modified is sent to the second: compare at that precision.
    return int(row.modified) > int(since)


def _outcome(headers: dict[str, str], prefix: str, row: ObjectRow) -> int:
    """200, 304 or 412 for the four condition headers named ``<prefix>if-...``."""
    if_match = headers.get(f"{prefix}if-match")
    if if_match is not None:
        if not _matches(if_match, row):
            return 412
    else:
        unmodified = _since(headers.get(f"{prefix}if-unmodified-since"))
        if unmodified is not None and _modified_after(row, unmodified):
            return 412
    if_none = headers.get(f"{prefix}if-none-match")
    if if_none is not None:
        if _matches(if_none, row):
            return 304
    else:
        modified = _since(headers.get(f"{prefix}if-modified-since"))
        if modified is not None and not _modified_after(row, modified):
            return 304
    return 200


def read_precondition(req: S3Request, row: ObjectRow) -> Response | None:
    """The 304 answer a GET or HEAD gets, None to answer normally; raises for 412."""
    outcome = _outcome(req.headers, "", row)
    if outcome == 412:
        raise PreconditionFailedError()
    if outcome == 304:
        headers = {"etag": f'"{row.etag}"', "last-modified": http_time(row.modified)}
        return Response(status_code=304, headers=headers)
    return None


def copy_source_check(req: S3Request) -> Callable[[ObjectRow], None] | None:
    """What the ``x-amz-copy-source-if-*`` headers ask of the source object (412 when
    it is not so), or None when there are none."""
    prefix = "x-amz-copy-source-"
    names = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
    if not any(prefix + name in req.headers for name in names):
        return None
    headers = dict(req.headers)

    def check(row: ObjectRow) -> None:
        if _outcome(headers, prefix, row) != 200:
            raise PreconditionFailedError()

    return check


def write_condition(req: S3Request) -> WriteCondition | None:
    """The condition of a PutObject, CopyObject or CompleteMultipartUpload, if any."""
    if_match = req.headers.get("if-match")
    if_none = req.headers.get("if-none-match")
    if if_match is None and if_none is None:
        return None
    if if_none is not None and etags(if_none) != ("*",):
        raise InvalidObjectError(
            "NotImplemented",
            "A header you provided implies functionality that is not implemented: a write "
            "takes If-None-Match only as '*' (store the object only if the key has none).",
            status=501,
        )
    matched = etags(if_match) if if_match is not None else ()
    if if_match is not None and not matched:
        raise InvalidObjectError("InvalidArgument", "If-Match needs an ETag")
    return WriteCondition(if_match=matched, if_absent=if_none is not None)

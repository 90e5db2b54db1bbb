"""Who may do what in the S3 API: each operation needs ``s3:read`` or ``s3:write`` on
what it names (``security.permissions``), checked once the signature verified and
before anything is read or stored.

| operations | need |
| --- | --- |
| GetObject, HeadObject, GetObjectAttributes, GetObjectAcl | ``s3:read`` on ``bucket/key`` |
| PutObject, DeleteObject, PutObjectAcl, the multipart calls | ``s3:write`` on ``bucket/key`` |
| CopyObject, UploadPartCopy | that, and ``s3:read`` on the source |
| DeleteObjects | ``s3:write`` on each key (checked as the body is read) |
| ListObjects, ListObjectVersions | ``s3:read`` covering every key under the prefix |
| ListMultipartUploads | ``s3:write`` covering every key under the prefix |
| CreateBucket, DeleteBucket, PutBucketAcl, PutBucketVersioning | ``s3:write`` on the whole bucket |
| HeadBucket, GetBucketLocation, GetBucketVersioning, GetBucketAcl | any permission in the bucket |
| PutBucketCors, DeleteBucketCors | ``s3:write`` on the whole bucket |
| GetBucketCors | any permission in the bucket |
| ListBuckets | any ``s3:`` permission; lists the buckets it has one in |

A CORS preflight (``OPTIONS``) is unsigned, as on S3, and needs no permission.

A refusal is S3's ``AccessDenied`` (403), its message naming the permission missing.
"""

from __future__ import annotations

from triggerfish.api.s3 import objects as o
from triggerfish.api.s3.request import S3Request
from triggerfish.security.permissions import S3_READ, S3_WRITE, Principal
from triggerfish.security.sigv4 import S3AuthError

_OBJECT_READS = frozenset({"GetObject", "HeadObject", "GetObjectAttributes", "GetObjectAcl"})
_BUCKET_READS = frozenset(
    {"HeadBucket", "GetBucketLocation", "GetBucketVersioning", "GetBucketAcl", "GetBucketCors"}
)
_BUCKET_WRITES = frozenset(
    {"CreateBucket", "DeleteBucket", "PutBucketAcl", "PutBucketVersioning"}
    | {"PutBucketCors", "DeleteBucketCors"}
)
_OBJECT_WRITES = frozenset(
    {
        "PutObject",
        "PutObjectAcl",
        "DeleteObject",
        "UploadPart",
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "ListParts",
    }
)


def denied(principal: Principal, action: str, resource: str) -> S3AuthError:
    return S3AuthError("AccessDenied", principal.denial(action, resource), status=403)


def require(principal: Principal, action: str, resource: str) -> None:
    if not principal.allows(action, resource):
        raise denied(principal, action, resource)


def authorize(principal: Principal, operation: str, req: S3Request) -> None:
    """Raise ``AccessDenied`` unless ``principal`` may run ``operation`` as ``req`` asks."""
    policy = principal.policy
    bucket = req.bucket or ""
    if operation in _OBJECT_READS:
        require(principal, S3_READ, f"{bucket}/{req.key}")
    elif operation in _OBJECT_WRITES:
        require(principal, S3_WRITE, f"{bucket}/{req.key}")
        if "x-amz-copy-source" in req.headers:
            source_bucket, source_key = o.copy_source(req)
            require(principal, S3_READ, f"{source_bucket}/{source_key}")
    elif operation in ("ListObjects", "ListObjectVersions", "ListMultipartUploads"):
        action = S3_WRITE if operation == "ListMultipartUploads" else S3_READ
        prefix = req.params.get("prefix", "")
        if not policy.allows_listing(action, bucket, prefix):
            raise denied(principal, action, f"{bucket}/{prefix}*")
    elif operation in _BUCKET_WRITES:
        require(principal, S3_WRITE, bucket)
    elif operation in _BUCKET_READS or operation == "DeleteObjects":
        if not policy.touches_bucket(bucket):
            raise denied(principal, S3_WRITE if operation == "DeleteObjects" else S3_READ, bucket)
    elif operation == "ListBuckets" and not (
        policy.grants_any(S3_READ) or policy.grants_any(S3_WRITE)
    ):
        raise denied(principal, S3_READ, "*")


def _signer(req: S3Request) -> Principal:
    if req.principal is None:  # never: ``S3App`` sets it before any handler runs
        raise S3AuthError("AccessDenied", "the request's signer is not known")
    return req.principal


def visible(req: S3Request, bucket: str) -> bool:
    """True when the request's signer may see ``bucket`` in ListBuckets."""
    return _signer(req).policy.touches_bucket(bucket)


def require_key(req: S3Request, action: str, key: str) -> None:
    """``action`` on one key of the request's bucket (DeleteObjects names them in its
    body)."""
    require(_signer(req), action, f"{req.bucket}/{key}")

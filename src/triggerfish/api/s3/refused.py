"""Request headers that ask for something Triggerfish does not do, refused with an
error that says so rather than accepted and ignored.

- ACLs: ``x-amz-acl`` other than the owner-only canned ACLs (``acl.OWNER_ONLY``) and
  every ``x-amz-grant-*`` header answer ``AccessControlListNotSupported`` (400).
- Server-side encryption: Triggerfish stores the bytes of objects as they were sent
  (in the data directory, or in the shared store of a cluster) and does not encrypt
  them, so ``x-amz-server-side-encryption`` and the SSE-C and KMS headers answer
  ``NotImplemented`` (501): accepting them would promise an encryption that does not
  happen.
- Object lock and tagging on a write answer ``NotImplemented`` too.
"""

from __future__ import annotations

from triggerfish.api.s3.acl import OWNER_ONLY, acl_refused
from triggerfish.api.s3.request import S3Request
from triggerfish.sources.buckets import InvalidObjectError

_ENCRYPTION = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
)
_NOT_IMPLEMENTED = {
    "x-amz-object-lock-mode": "object lock",
    "x-amz-object-lock-retain-until-date": "object lock",
    "x-amz-object-lock-legal-hold": "object lock",
    "x-amz-tagging": "object tagging",
}


def not_implemented(message: str) -> InvalidObjectError:
    return InvalidObjectError(
        "NotImplemented",
        f"A header you provided implies functionality that is not implemented: {message}",
        status=501,
    )


def refuse_unsupported(req: S3Request) -> None:
    """Raise for the first header of ``req`` that asks for what Triggerfish does not do."""
    headers = req.headers
    canned = headers.get("x-amz-acl")
    if canned is not None and canned.strip() not in OWNER_ONLY:
        raise acl_refused(f"the canned ACL {canned.strip()!r} is not supported")
    grants = sorted(name for name in headers if name.startswith("x-amz-grant-"))
    if grants:
        raise acl_refused(f"{grants[0]} is not supported")
    for name in _ENCRYPTION:
        if name in headers:
            raise not_implemented(
                f"{name}. Triggerfish does not encrypt objects at rest: it stores their bytes "
                "as sent, so it refuses server-side encryption rather than claim it."
            )
    if headers.get("x-amz-bucket-object-lock-enabled", "").strip().lower() == "true":
        raise not_implemented("object lock (x-amz-bucket-object-lock-enabled)")
    for name, what in _NOT_IMPLEMENTED.items():
        if name in headers:
            raise not_implemented(f"{what} ({name})")

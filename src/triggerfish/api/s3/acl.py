"""Access control lists, as S3 answers them for a bucket whose ACLs are disabled (its
object ownership "bucket owner enforced", the default of new S3 buckets).

Who may do what in Triggerfish is the access key's permissions (``access``), never an
ACL. So every bucket and object has the one grant S3 reports in that mode: its owner,
``FULL_CONTROL``. Setting that same ACL (``x-amz-acl: private`` or
``bucket-owner-full-control``, or a policy document granting only the owner) is
accepted; any other ACL is refused with ``AccessControlListNotSupported`` instead of
being accepted and ignored (``refused``).
"""

from __future__ import annotations

from starlette.responses import Response

from triggerfish.api.s3.request import S3Request
from triggerfish.api.s3.xml import NAMESPACE, XML_TYPE, parse
from triggerfish.sources.buckets import BucketStore, InvalidObjectError
from triggerfish.sources.buckets.notifications import OWNER

#: The canned ACLs that say what Triggerfish does anyway: only the owner has access.
OWNER_ONLY = ("private", "bucket-owner-full-control")
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


def acl_refused(what: str) -> InvalidObjectError:
    return InvalidObjectError(
        "AccessControlListNotSupported",
        f"The bucket does not allow ACLs: {what}. Triggerfish grants access with access "
        "keys and their permissions; every object belongs to the bucket's owner.",
    )


async def get_acl(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    if req.key is not None:
        await store.head_object(req.bucket, req.key)
    else:
        await store.check_bucket(req.bucket)
    owner = f"<ID>{OWNER}</ID><DisplayName>{OWNER}</DisplayName>"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<AccessControlPolicy xmlns="{NAMESPACE}"><Owner>{owner}</Owner>'
        f'<AccessControlList><Grant><Grantee xmlns:xsi="{_XSI}" xsi:type="CanonicalUser">'
        f"{owner}</Grantee><Permission>FULL_CONTROL</Permission></Grant>"
        "</AccessControlList></AccessControlPolicy>"
    )
    return Response(body, media_type=XML_TYPE)


async def put_acl(store: BucketStore, req: S3Request) -> Response:
    assert req.bucket is not None
    body = await req.read_small()
    if req.key is not None:
        await store.head_object(req.bucket, req.key)
    else:
        await store.check_bucket(req.bucket)
    if "x-amz-acl" not in req.headers and not any(
        name.startswith("x-amz-grant-") for name in req.headers
    ):
        if not body.strip():
            raise InvalidObjectError(
                "MissingSecurityHeader", "Your request was missing a required header: x-amz-acl"
            )
        _check_policy(body)
    return Response()


def _check_policy(body: bytes) -> None:
    """Accept an AccessControlPolicy that grants only the owner FULL_CONTROL."""
    root = parse(body)
    for grant in root.iter("Grant"):
        grantee_id = grant.findtext("Grantee/ID")
        if grantee_id != OWNER or grant.findtext("Permission") != "FULL_CONTROL":
            raise acl_refused("a grant to anyone but the owner, or of less than FULL_CONTROL")

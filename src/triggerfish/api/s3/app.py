"""The S3-compatible API, and the middleware that shares the server's port with it.

``S3Middleware`` sends a request to the S3 API when it is signed with AWS Signature
Version 4 (``Authorization: AWS4-HMAC-SHA256 ...`` or ``X-Amz-Algorithm`` in the
query) or addressed virtual-host style (``<bucket>.<domain>`` for a known domain,
``localhost`` by default). The paths of the control API (``/v1/``, ``/fn/``) and of
the Lambda APIs (``/2015-03-31/``, ``/2018-06-01/``) always go to the application it
wraps, and so do unsigned requests for its own few paths (``UNSIGNED_PATHS``: health,
metrics, the OpenAPI documents, the web console); any other unsigned request is an
anonymous S3 request, refused with S3's ``AccessDenied``.

Every S3 request must be signed by an access key Triggerfish issued, but for a
browser's CORS preflight (``OPTIONS``, answered by the bucket's CORS rules: ``cors``);
errors are S3's XML error documents (``SignatureDoesNotMatch``, ``NoSuchBucket``,
``NoSuchKey`` ...).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish.api.lambda_.account import is_lambda_request
from triggerfish.api.protocol import CONTINUE_UNSENT
from triggerfish.api.redact import without_paths
from triggerfish.api.s3 import acl, cors
from triggerfish.api.s3 import buckets as b
from triggerfish.api.s3 import objects as o
from triggerfish.api.s3 import versions as v
from triggerfish.api.s3.access import authorize
from triggerfish.api.s3.attributes import get_object_attributes
from triggerfish.api.s3.refused import refuse_unsupported
from triggerfish.api.s3.request import S3Request, bucket_from_host
from triggerfish.api.s3.versions import check_version
from triggerfish.api.s3.xml import error_response
from triggerfish.control.bucket_settings import BucketSettings
from triggerfish.errors import AdapterError, TriggerfishError, ValidationError
from triggerfish.observe.disk import DiskSpace
from triggerfish.security.access_keys import AccessKeys
from triggerfish.security.sigv4 import S3AuthError, verify
from triggerfish.sources.buckets import BucketStore, InvalidObjectError

log = logging.getLogger("triggerfish.s3")

CONTROL_PREFIXES = ("/v1/", "/fn/", "/2015-03-31/", "/2018-06-01/")
#: The control API's own paths that answer unsigned requests; any other unsigned request
#: (not virtual-host style, not under the prefixes above) is S3's, and refused as S3
#: refuses anonymous requests.
UNSIGNED_PATHS = frozenset(
    {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
    | {"/docs/oauth2-redirect", "/redoc"}
)
#: The web console's files (``triggerfish.console``), unsigned too.
UNSIGNED_PREFIXES = ("/console/",)
Handler = Callable[[BucketStore, S3Request], Awaitable[Response]]


def default_domains(host: str) -> tuple[str, ...]:
    """Domains under which ``<bucket>.<domain>`` addresses a bucket: ``localhost``, and
    the server's host when it is a name rather than an address."""
    domains = ["localhost"]
    bare = host.strip("[]")
    if bare and not ipaddress_like(bare) and bare != "localhost":
        domains.append(bare)
    return tuple(domains)


def ipaddress_like(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_signed(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value.startswith((b"AWS4-HMAC-SHA256 ", b"AWS ")):
            return True
    query: bytes = scope.get("query_string", b"")
    # Signature Version 2 presigned URLs (AWSAccessKeyId) come here to be told why not.
    return b"X-Amz-Algorithm=" in query or b"AWSAccessKeyId=" in query


def wants_s3(scope: Scope, domains: Sequence[str]) -> bool:
    path: str = scope.get("path", "")
    if path.startswith(CONTROL_PREFIXES) or path in ("/v1", "/fn"):
        return False
    if is_lambda_request(scope):
        return False
    if is_signed(scope):
        return True
    for name, value in scope.get("headers", ()):
        if name == b"host" and bucket_from_host(value.decode("latin-1"), domains) is not None:
            return True
    return path not in UNSIGNED_PATHS and not path.startswith(UNSIGNED_PREFIXES)


def route(req: S3Request) -> tuple[str, Handler]:
    """The S3 operation a request asks for, and its handler."""
    method, has = req.method, req.has
    if req.bucket is None:
        if method == "GET":
            return "ListBuckets", b.list_buckets
    elif req.key is None:
        if has("cors") and method in cors.OPERATIONS:
            # Served by ``S3App`` over the buckets' settings (``cors.Cors``).
            return cors.OPERATIONS[method], _not_implemented
        found = _bucket_extra(req)
        if found is not None:
            return found
        if method == "GET":
            if has("location"):
                return "GetBucketLocation", b.bucket_location
            if has("uploads"):
                return "ListMultipartUploads", b.list_uploads
            if not _bucket_subresource(req):
                return "ListObjects", b.list_objects
        elif method == "PUT" and not _bucket_subresource(req):
            return "CreateBucket", b.create_bucket
        elif method == "DELETE" and not _bucket_subresource(req):
            return "DeleteBucket", b.delete_bucket
        elif method == "HEAD":
            return "HeadBucket", b.head_bucket
        elif method == "POST" and has("delete"):
            return "DeleteObjects", b.delete_objects
    else:
        upload = has("uploadId")
        found = _object_extra(req)
        if found is not None:
            return found
        if method == "GET" and upload:
            return "ListParts", o.list_parts
        if method == "GET" and not _object_subresource(req):
            return "GetObject", _get
        if method == "HEAD":
            return "HeadObject", _head
        if method == "PUT" and upload and has("partNumber"):
            return "UploadPart", o.upload_part
        if method == "PUT" and not _object_subresource(req):
            return "PutObject", o.put_object
        if method == "DELETE" and upload:
            return "AbortMultipartUpload", o.abort_upload
        if method == "DELETE" and not _object_subresource(req):
            return "DeleteObject", o.delete_object
        if method == "POST" and has("uploads"):
            return "CreateMultipartUpload", o.create_upload
        if method == "POST" and upload:
            return "CompleteMultipartUpload", o.complete_upload
    return "NotImplemented", _not_implemented


_PRESIGN = {
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "x-id",
}
_LIST = {"list-type", "prefix", "delimiter", "encoding-type", "max-keys", "marker"}
_LIST |= {"continuation-token", "start-after", "fetch-owner"}


def _bucket_subresource(req: S3Request) -> bool:
    return any(name not in _PRESIGN and name not in _LIST for name, _ in req.query)


def _object_subresource(req: S3Request) -> bool:
    allowed = _PRESIGN | {"versionId", *o.RESPONSE_OVERRIDES}
    if req.method == "GET":
        allowed.add("partNumber")
    return any(name not in allowed for name, _ in req.query)


def _bucket_extra(req: S3Request) -> tuple[str, Handler] | None:
    """The bucket operations beyond the core ones: versioning answers and ACLs."""
    method, has = req.method, req.has
    if method == "GET" and has("versions"):
        return "ListObjectVersions", v.list_object_versions
    if method == "GET" and has("versioning"):
        return "GetBucketVersioning", v.get_bucket_versioning
    if method == "PUT" and has("versioning"):
        return "PutBucketVersioning", v.put_bucket_versioning
    if method == "GET" and has("acl"):
        return "GetBucketAcl", acl.get_acl
    if method == "PUT" and has("acl"):
        return "PutBucketAcl", acl.put_acl
    return None


def _object_extra(req: S3Request) -> tuple[str, Handler] | None:
    method, has = req.method, req.has
    if method == "GET" and has("attributes"):
        return "GetObjectAttributes", get_object_attributes
    if method == "GET" and has("acl"):
        return "GetObjectAcl", acl.get_acl
    if method == "PUT" and has("acl"):
        return "PutObjectAcl", acl.put_acl
    return None


async def _get(store: BucketStore, req: S3Request) -> Response:
    return await o.get_object(store, req, head=False)


async def _head(store: BucketStore, req: S3Request) -> Response:
    return await o.get_object(store, req, head=True)


async def _not_implemented(_store: BucketStore, req: S3Request) -> Response:
    names = ", ".join(sorted({name for name, _ in req.query})) or "none"
    raise InvalidObjectError(
        "NotImplemented",
        f"Triggerfish's S3 API does not implement {req.method} {req.resource} with the "
        f"query parameters: {names}",
        status=501,
    )


#: The operations that write a new object (and its event), refused on a low disk.
NEW_OBJECTS = frozenset(
    {"PutObject", "CopyObject", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload"}
)


class S3App:
    def __init__(
        self,
        buckets: BucketStore,
        keys: AccessKeys,
        *,
        domains: Sequence[str] = ("localhost",),
        settings: BucketSettings | None = None,
        disk: DiskSpace | None = None,
    ) -> None:
        self.buckets = buckets
        self.keys = keys
        self.domains = tuple(domains)
        self.settings = settings
        self.disk = disk  # new objects wait while the node is low on disk space
        self.cors = cors.Cors(settings) if settings is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asked = False

        async def receive_body() -> Message:
            nonlocal asked
            asked = True
            return await receive()

        request = Request(scope, receive_body)
        response = await self.handle(request)
        unsent = not asked and CONTINUE_UNSENT in scope.get("extensions", {})
        if unsent and response.headers.get("connection") == "close":
            # The client waits for a 100 Continue it will not get, and sends no body:
            # the connection stays usable (the server reads the next request).
            del response.headers["connection"]
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        head = request.method.upper() == "HEAD"
        req: S3Request | None = None
        try:
            req = S3Request.parse(request, self.domains)
            if req.method == "OPTIONS" and self.cors is not None:
                response = await self.cors.preflight(self.buckets, request, req)
                response.headers["x-amz-request-id"] = req.request_id
                return response
            req.credentials = await verify(
                req.method, req.path, req.query, req.headers, self.keys.secret
            )
            req.principal = self.keys.principal(req.credentials.access_key)
            operation, handler = route(req)
            if operation in cors.OPERATIONS.values() and self.cors is not None:
                handler = self.cors.handler(operation)
            authorize(req.principal, operation, req)
            refuse_unsupported(req)
            if self.disk is not None and operation in NEW_OBJECTS:
                self.disk.admit()
            if req.key is not None:
                check_version(req.params.get("versionId"))
            response = await handler(self.buckets, req)
            if operation == "DeleteBucket" and self.settings is not None:
                await self.settings.forget(req.bucket or "")
            if self.cors is not None:
                await self.cors.decorate(req, response)
        except Exception as exc:
            error = self._error(exc, req, head=head)
            if req is not None and self.cors is not None:
                await self._decorate_error(req, error)
            if _has_body(request):
                # The body may be unread (an answer before the upload, a 503 that the
                # client retries): the next request on this connection would be taken
                # for the rest of it, so the client is told to open another.
                error.headers["connection"] = "close"
            return error
        response.headers["x-amz-request-id"] = req.request_id
        response.headers["x-amz-id-2"] = req.request_id
        return response

    async def _decorate_error(self, req: S3Request, error: Response) -> None:
        """A browser reads an error only with the CORS headers of its bucket's rules."""
        assert self.cors is not None
        try:
            await self.cors.decorate(req, error)
        except Exception:  # the store is away: the error goes without them
            log.debug("no CORS headers for an error answer", exc_info=True)

    def _error(self, exc: Exception, req: S3Request | None, *, head: bool) -> Response:
        code = getattr(exc, "code", None)
        status = getattr(exc, "status", None)
        if not isinstance(code, str) or not isinstance(status, int):
            if not isinstance(exc, TriggerfishError):
                log.exception("S3 request failed", exc_info=exc)
                code, status = "InternalError", 500
            elif isinstance(exc, ValidationError):
                code, status = "InvalidArgument", 400
            elif isinstance(exc, AdapterError):
                # The store (or the bus) is away: S3 clients retry a 503 by themselves.
                log.warning("S3 request failed: %s", exc)
                code, status = "ServiceUnavailable", 503
            else:
                log.error("S3 request failed: %s", exc, exc_info=exc)
                code, status = "InternalError", 500
        if isinstance(exc, S3AuthError):
            log.info("S3 request refused: %s (%s)", exc.code, exc)
        request_id = req.request_id if req else "0"
        response = error_response(
            code,
            without_paths(str(exc))
            if status != 500
            else "We encountered an internal error. Please try again.",
            status,
            request_id=request_id,
            resource=req.resource if req else "/",
            head=head,
        )
        if status == 503:
            response.headers["Retry-After"] = str(max(1, round(getattr(exc, "retry_after", 1))))
        return response


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length", "0").strip()
    return length not in ("", "0") or "transfer-encoding" in request.headers


class S3Middleware:
    """Serves the S3 API beside ``app`` on one port (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        buckets: BucketStore,
        keys: AccessKeys,
        domains: Sequence[str] = ("localhost",),
        settings: BucketSettings | None = None,
        disk: DiskSpace | None = None,
    ) -> None:
        self.app = app
        self.s3 = S3App(buckets, keys, domains=domains, settings=settings, disk=disk)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and wants_s3(scope, self.s3.domains):
            await self.s3(scope, receive, send)
        else:
            await self.app(scope, receive, send)

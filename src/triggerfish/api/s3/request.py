"""One S3 request: its bucket and key (path-style or virtual-host style), its verified
signature, and its body, read while checking what the signature and headers promise.

A body is checked against ``x-amz-content-sha256`` (or each chunk's signature for
``aws-chunked`` uploads), ``Content-MD5`` and the ``x-amz-checksum-*`` header or
trailer when given (``checksums``); a body that does not match is refused before
anything is stored, and the checksum computed is left in ``S3Request.checksum``.
S3's own size limits hold: a request that declares a body over 5 GiB is refused
(``EntityTooLarge``) before its signature is checked, and a body is refused as soon as
it streams past its limit.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request

from triggerfish.api.s3.checksums import BodyChecksum, Named, named
from triggerfish.security.permissions import Principal
from triggerfish.security.sigv4 import (
    STREAMING_MODES,
    UNSIGNED,
    ChunkedBody,
    Credentials,
    S3AuthError,
    decode_path,
)
from triggerfish.sources.buckets.blobs import BlobWriter
from triggerfish.sources.buckets.checksums import Checksum
from triggerfish.sources.buckets.errors import InvalidObjectError
from triggerfish.sources.buckets.notifications import Actor

MAX_XML_BODY = 4 * 1024 * 1024
#: S3's limits: the object of one PutObject, and one part of a multipart upload.
MAX_PUT_SIZE = 5 * 1024**3
MAX_PART_SIZE = 5 * 1024**3


def entity_too_large(limit: int) -> InvalidObjectError:
    return InvalidObjectError(
        "EntityTooLarge",
        f"Your proposed upload exceeds the maximum allowed size of {limit} bytes.",
    )


class BadDigestError(S3AuthError):
    pass


def bucket_from_host(host: str, domains: Sequence[str]) -> str | None:
    """``photos`` for ``photos.localhost:8080`` when ``localhost`` is a known domain."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    for domain in domains:
        suffix = "." + domain.lower()
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


@dataclass(slots=True)
class S3Request:
    request: Request
    method: str
    path: str  # decoded
    bucket: str | None
    key: str | None
    query: list[tuple[str, str]]
    headers: dict[str, str]
    request_id: str = field(default_factory=lambda: secrets.token_hex(8).upper())
    credentials: Credentials | None = None
    principal: Principal | None = None  # who signed it, with their permissions
    checksum: Checksum | None = None  # of the body read, once it is read (see ``read_into``)

    @classmethod
    def parse(cls, request: Request, domains: Sequence[str]) -> S3Request:
        scope = request.scope
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        raw_path = raw_path.split(b"?", 1)[0]
        try:
            path = decode_path(raw_path)
        except UnicodeDecodeError:
            raise InvalidObjectError("InvalidURI", "Couldn't parse the specified URI.") from None
        query_text = scope.get("query_string", b"").decode("latin-1")
        query = parse_qsl(query_text, keep_blank_values=True)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        virtual = bucket_from_host(headers.get("host", ""), domains)
        if virtual is not None:
            bucket: str | None = virtual
            key: str | None = path[1:] or None
        else:
            name, _, rest = path[1:].partition("/")
            bucket = name or None
            key = rest or None
        # aws-chunked bodies declare their payload's length apart from their own.
        declared = headers.get("x-amz-decoded-content-length") or headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_PUT_SIZE:
            raise entity_too_large(MAX_PUT_SIZE)
        return cls(request, request.method.upper(), path, bucket, key, query, headers)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    def has(self, name: str) -> bool:
        return any(key == name for key, _value in self.query)

    @property
    def resource(self) -> str:
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}/{self.key}" if self.key else f"/{self.bucket}"

    def actor(self) -> Actor:
        client = self.request.client
        return Actor(
            principal=self.credentials.access_key if self.credentials else "anonymous",
            source_ip=client.host if client else "127.0.0.1",
            request_id=self.request_id,
        )

    async def read_into(
        self, writer: BlobWriter, *, limit: int = MAX_PUT_SIZE, keep: str | None = None
    ) -> None:
        """Stream the body into ``writer``, checking it; raise on a mismatch, or once
        it is over ``limit`` bytes."""
        await self._read(writer.write, limit, keep)

    async def read_small(self, limit: int = MAX_XML_BODY, *, checksum: bool = True) -> bytes:
        """The whole (small) body; ``checksum=False`` when the request's
        ``x-amz-checksum-*`` header is not the body's (CompleteMultipartUpload's is the
        object's)."""
        parts: list[bytes] = []
        size = 0

        def keep(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > limit:
                raise InvalidObjectError("MaxMessageLengthExceeded", "Your request was too big.")
            parts.append(data)

        await self._read(keep, check=checksum)
        return b"".join(parts)

    async def _read(
        self,
        sink: Callable[[bytes], object],
        limit: int = MAX_PUT_SIZE,
        keep: str | None = None,
        *,
        check: bool = True,
    ) -> None:
        """``keep``: the algorithm of the checksum to compute for ``self.checksum``
        (the one the request names when None); a checksum the request gives is checked
        either way."""
        assert self.credentials is not None
        claimed = self.credentials.payload_hash
        chunked = ChunkedBody(self.credentials) if claimed in STREAMING_MODES else None
        sha256 = hashlib.sha256() if claimed != UNSIGNED and chunked is None else None
        md5 = hashlib.md5(usedforsecurity=False) if "content-md5" in self.headers else None
        checksum = BodyChecksum(named(self.headers) if check else Named(), keep)
        size = 0
        async for data in self.request.stream():
            if chunked is not None:
                data = chunked.feed(data)
            if not data:
                continue
            if sha256 is not None:
                sha256.update(data)
            if md5 is not None:
                md5.update(data)
            checksum.update(data)
            size += len(data)
            if size > limit:
                raise entity_too_large(limit)
            sink(data)
        trailers: dict[str, str] = {}
        if chunked is not None:
            chunked.finish()
            trailers = chunked.trailers
        if sha256 is not None and sha256.hexdigest() != claimed:
            raise S3AuthError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                status=400,
            )
        if md5 is not None:
            given = self.headers["content-md5"].strip()
            if base64.b64encode(md5.digest()).decode("ascii") != given:
                raise BadDigestError(
                    "BadDigest",
                    "The Content-MD5 you specified did not match what we received.",
                    status=400,
                )
        self.checksum = checksum.finish(trailers)

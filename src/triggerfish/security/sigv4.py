"""AWS Signature Version 4, as S3 clients sign requests: verification on the server side.

Handles the ``Authorization: AWS4-HMAC-SHA256 ...`` header and presigned URLs
(``X-Amz-Algorithm`` in the query), payload hashes given in ``x-amz-content-sha256``
(a hex digest, ``UNSIGNED-PAYLOAD``, or one of the ``STREAMING-...`` modes whose body
is ``aws-chunked``), and the clock-skew window S3 enforces. Everything here is pure:
the caller supplies the request's parts and a function that finds a secret by key id,
and gets either a ``Credentials`` value or an ``S3AuthError`` carrying S3's error code.

The canonical request follows AWS's rules for S3: the path is encoded once (each byte
but ``A-Za-z0-9-._~/``), query names and values are encoded (``/`` included) and sorted,
and header values are trimmed with inner runs of spaces folded.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from triggerfish.errors import AuthError

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = frozenset(
    {STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER}
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN = 7 * 24 * 3600

_AUTH_PART = re.compile(r"\s*(Credential|SignedHeaders|Signature)\s*=\s*([^,\s]*)\s*")
_SPACES = re.compile(r" +")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

_V2_UNSUPPORTED = (
    "Signature Version 2 is not supported: sign requests with AWS4-HMAC-SHA256 (for boto3 "
    "presigned URLs: Config(signature_version='s3v4'))"
)

SecretLookup = Callable[[str], Awaitable[str | None]]


class S3AuthError(AuthError):
    """A request whose signature does not check out; ``code`` is S3's error code
    (``SignatureDoesNotMatch``, ``InvalidAccessKeyId``, ``AccessDenied`` ...)."""

    def __init__(self, code: str, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class Credentials:
    """A verified request: who signed it, and how its body is to be checked."""

    access_key: str
    date: str  # yyyymmdd of the scope
    region: str
    service: str
    amz_date: str  # the request's timestamp (yyyymmddThhmmssZ)
    signature: str  # the seed signature of an aws-chunked body
    payload_hash: str  # hex digest to compare the body with, or UNSIGNED / STREAMING-...
    signing_key: bytes

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


# A client signs every request of a day with the same key: derive it once (four HMACs).
@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def uri_encode(text: str, *, keep_slash: bool) -> str:
    return quote(text, safe="/~" if keep_slash else "~")


def canonical_query(pairs: Iterable[tuple[str, str]], *, skip: str | None = None) -> str:
    encoded = sorted(
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in pairs
        if name != skip
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_hash: str,
    *,
    skip_query: str | None = None,
) -> str:
    """``path`` is the decoded path; ``headers`` maps lowercase names to values (several
    values of one header joined by commas)."""
    lines = []
    for name in signed_headers:
        value = headers.get(name, "")
        lines.append(f"{name}:{_SPACES.sub(' ', value.strip())}\n")
    return "\n".join(
        [
            method.upper(),
            uri_encode(path, keep_slash=True) or "/",
            canonical_query(query, skip=skip_query),
            "".join(lines),
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _parse_time(amz_date: str) -> datetime:
    # By hand: strptime took longer than the rest of a signature check.
    try:
        if not _AMZ_DATE.fullmatch(amz_date):
            raise ValueError(amz_date)
        return datetime(
            int(amz_date[0:4]),
            int(amz_date[4:6]),
            int(amz_date[6:8]),
            int(amz_date[9:11]),
            int(amz_date[11:13]),
            int(amz_date[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        raise S3AuthError(
            "AccessDenied", f"X-Amz-Date {amz_date!r} is not of the form YYYYMMDDTHHMMSSZ"
        ) from None


_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")


def _parse_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise S3AuthError(
            "AuthorizationHeaderMalformed",
            f"the credential {credential!r} must read <key id>/<date>/<region>/s3/aws4_request",
            status=400,
        )
    return parts[0], parts[1], parts[2], parts[3]


async def verify(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    lookup: SecretLookup,
    *,
    now: datetime | None = None,
    body_sha256: str | None = None,
) -> Credentials:
    """Check a request's signature (header or presigned query); raise S3AuthError.

    ``path`` is decoded; ``query`` holds decoded (name, value) pairs in order;
    ``headers`` maps lowercase names to values. ``body_sha256``: the hex digest of the
    body, for services other than S3, whose clients sign the body without sending
    ``x-amz-content-sha256`` (their canonical path is then the raw, still-encoded path
    of the request, which AWS encodes a second time)."""
    now = now or datetime.now(UTC)
    params = dict(query)
    authorization = headers.get("authorization", "")
    if authorization:
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != ALGORITHM:
            raise S3AuthError("InvalidRequest", _V2_UNSUPPORTED, status=400)
        fields: dict[str, str] = {}
        for part in rest.split(","):
            match = _AUTH_PART.fullmatch(part)
            if match:
                fields[match.group(1)] = match.group(2)
        missing = {"Credential", "SignedHeaders", "Signature"} - fields.keys()
        if missing:
            raise S3AuthError(
                "AuthorizationHeaderMalformed",
                f"the Authorization header lacks {', '.join(sorted(missing))}",
                status=400,
            )
        credential, signed, given = (
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
        )
        amz_date = headers.get("x-amz-date", "")
        if not amz_date:
            raise S3AuthError("AccessDenied", "the request has no X-Amz-Date header")
        moment = _parse_time(amz_date)
        if abs(now - moment) > MAX_SKEW:
            raise S3AuthError(
                "RequestTimeTooSkewed",
                "the difference between the request time and the server's time is too large",
            )
        payload_hash = headers.get("x-amz-content-sha256", "") or (body_sha256 or "")
        if not payload_hash:
            raise S3AuthError(
                "InvalidRequest", "the request has no x-amz-content-sha256 header", status=400
            )
        known = payload_hash in STREAMING_MODES or payload_hash == UNSIGNED
        if not known and not _HEX64.match(payload_hash):
            raise S3AuthError(
                "InvalidArgument", "x-amz-content-sha256 must be a SHA-256 hex digest", status=400
            )
        skip = None
    elif params.get("X-Amz-Algorithm"):
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise S3AuthError(
                "AuthorizationQueryParametersError",
                f"X-Amz-Algorithm must be {ALGORITHM}",
                status=400,
            )
        try:
            credential = params["X-Amz-Credential"]
            signed = params["X-Amz-SignedHeaders"]
            given = params["X-Amz-Signature"]
            amz_date = params["X-Amz-Date"]
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError) as exc:
            raise S3AuthError(
                "AuthorizationQueryParametersError",
                f"a presigned URL needs X-Amz-Credential, -SignedHeaders, -Signature, -Date and "
                f"a whole number X-Amz-Expires ({exc})",
                status=400,
            ) from None
        if not 0 < expires <= MAX_PRESIGN:
            raise S3AuthError(
                "AuthorizationQueryParametersError",
                f"X-Amz-Expires must be between 1 and {MAX_PRESIGN} seconds",
                status=400,
            )
        moment = _parse_time(amz_date)
        if now < moment - MAX_SKEW:
            raise S3AuthError("AccessDenied", "the presigned URL is not valid yet")
        if now > moment + timedelta(seconds=expires):
            raise S3AuthError("AccessDenied", "Request has expired")
        payload_hash = headers.get("x-amz-content-sha256", UNSIGNED)
        skip = "X-Amz-Signature"
    elif "AWSAccessKeyId" in params:
        raise S3AuthError("InvalidRequest", _V2_UNSUPPORTED, status=400)
    else:
        raise S3AuthError("AccessDenied", "the request is not signed (AWS Signature Version 4)")

    key_id, date, region, service = _parse_credential(credential)
    if date != amz_date[:8]:
        raise S3AuthError(
            "SignatureDoesNotMatch", "the credential's date differs from the request's date"
        )
    secret = await lookup(key_id)
    if secret is None:
        raise S3AuthError(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    signed_headers = [name.strip().lower() for name in signed.split(";") if name.strip()]
    if "host" not in signed_headers:
        raise S3AuthError("AccessDenied", "the signature must cover the host header")
    canonical = canonical_request(
        method, path, query, headers, signed_headers, payload_hash, skip_query=skip
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    key = signing_key(secret, date, region, service)
    expected = sign(key, string_to_sign(amz_date, scope, canonical))
    if not hmac.compare_digest(expected, given.lower()):
        raise S3AuthError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    return Credentials(
        access_key=key_id,
        date=date,
        region=region,
        service=service,
        amz_date=amz_date,
        signature=expected,
        payload_hash=payload_hash,
        signing_key=key,
    )


def chunk_signature(credentials: Credentials, previous: str, chunk_sha256: str) -> str:
    text = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            credentials.amz_date,
            credentials.scope,
            previous,
            EMPTY_SHA256,
            chunk_sha256,
        ]
    )
    return sign(credentials.signing_key, text)


def trailer_signature(credentials: Credentials, previous: str, trailer: bytes) -> str:
    text = "\n".join(
        [
            "AWS4-HMAC-SHA256-TRAILER",
            credentials.amz_date,
            credentials.scope,
            previous,
            hashlib.sha256(trailer).hexdigest(),
        ]
    )
    return sign(credentials.signing_key, text)


class ChunkedBody:
    """Decodes an ``aws-chunked`` body as it arrives, checking each chunk's signature
    (signed modes) and the trailer's; ``feed`` returns the payload bytes decoded so far,
    ``finish`` raises unless the final chunk came. ``trailers`` holds the trailing
    headers (``x-amz-checksum-crc32`` ...) once finished."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._signed = credentials.payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        self._buffer = bytearray()
        self._left = -1  # bytes of the current chunk still to read; -1: at a chunk header
        self._given = ""
        self._hash = hashlib.sha256()
        self._previous = credentials.signature
        self._ended = False  # the zero-size chunk was read; trailers follow
        self._done = False
        self._trailer_lines: list[bytes] = []
        self.trailers: dict[str, str] = {}

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while not self._done:
            if self._ended:
                if not self._read_trailer_line():
                    break
            elif self._left < 0:
                if not self._read_header():
                    break
            elif self._left > 0:
                if not self._buffer:
                    break
                piece = bytes(self._buffer[: self._left])
                del self._buffer[: len(piece)]
                self._left -= len(piece)
                self._hash.update(piece)
                out += piece
            else:
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise self._malformed("a chunk does not end with CRLF")
                del self._buffer[:2]
                self._check_chunk()
                self._left = -1
        return bytes(out)

    def finish(self) -> None:
        if not self._done and self._ended and not self._buffer:
            self._close_trailer()
        if not self._done:
            raise S3AuthError(
                "IncompleteBody", "the aws-chunked body ended before its last chunk", status=400
            )

    def _malformed(self, why: str) -> S3AuthError:
        return S3AuthError("InvalidRequest", f"malformed aws-chunked body: {why}", status=400)

    def _read_header(self) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > 4096:
                raise self._malformed("a chunk header is too long")
            return False
        line = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 2]
        size_text, _, extension = line.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise self._malformed(f"bad chunk size {size_text!r}") from None
        name, _, value = extension.partition("=")
        self._given = value.strip() if name.strip() == "chunk-signature" else ""
        if self._signed and not self._given:
            raise self._malformed("a chunk has no chunk-signature")
        self._hash = hashlib.sha256()
        if size == 0:
            self._check_chunk()
            self._ended = True
        else:
            self._left = size
        return True

    def _check_chunk(self) -> None:
        if not self._signed:
            return
        expected = chunk_signature(self._credentials, self._previous, self._hash.hexdigest())
        if not hmac.compare_digest(expected, self._given.lower()):
            raise S3AuthError(
                "SignatureDoesNotMatch", "a chunk's signature does not match its data"
            )
        self._previous = expected

    def _read_trailer_line(self) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            return False
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        if not line:
            self._close_trailer()
            return True
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "x-amz-trailer-signature":
            if self._signed:
                trailer = b"".join(item + b"\n" for item in self._trailer_lines)
                expected = trailer_signature(self._credentials, self._previous, trailer)
                if not hmac.compare_digest(expected, value.strip().lower()):
                    raise S3AuthError(
                        "SignatureDoesNotMatch", "the trailer's signature does not match"
                    )
        else:
            self._trailer_lines.append(f"{name}:{value.strip()}".encode("latin-1"))
            self.trailers[name] = value.strip()
        return True

    def _close_trailer(self) -> None:
        self._done = True


def decode_path(raw_path: bytes) -> str:
    """The decoded path of a request as S3 signs it (percent escapes resolved)."""
    return unquote(raw_path.decode("latin-1"), encoding="utf-8", errors="strict")

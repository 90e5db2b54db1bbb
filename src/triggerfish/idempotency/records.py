"""Where a function's idempotency records are kept: ``HttpRecords``, the node's
store through its API (each call signed with the function's own access key, by the
signing steps of ``security.sigv4``, without botocore), and ``MemoryRecords``, with
the same rules in memory, for unit tests of handlers.

The HTTP client is imported on the first call, not with this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from triggerfish.errors import ConfigError
from triggerfish.idempotency.errors import IdempotencyError
from triggerfish.security import sigv4

_API = "/v1/idempotency/"
_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a key found: ``claimed`` (``token`` now holds it), ``completed``
    (``result`` is what the handler returned, as JSON gives it back) or
    ``in_progress``; ``expires_in``: seconds left of the claim or of the record."""

    status: Literal["claimed", "completed", "in_progress"]
    expires_in: float
    token: str | None = None
    result: Any = None


class Records(Protocol):
    """Where a function's idempotency records are kept (blocking calls)."""

    def claim(self, key: str, lease: float) -> Claim: ...

    def complete(self, key: str, token: str, result: str, expires: float) -> bool:
        """Keep ``result`` (JSON text); False when ``token`` no longer holds the key."""
        ...

    def release(self, key: str, token: str) -> bool: ...


class MemoryRecords:
    """Records in memory, with the same rules as the node's store: for unit tests of
    handlers, and for code run outside Triggerfish."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (token, completed, result JSON text, expires at)
        self._rows: dict[str, tuple[str, bool, str | None, float]] = {}

    def claim(self, key: str, lease: float) -> Claim:
        now = self._clock()
        with self._lock:
            row = self._rows.get(key)
            if row is None or row[3] <= now:
                token = os.urandom(16).hex()
                self._rows[key] = (token, False, None, now + lease)
                return Claim("claimed", lease, token=token)
        _, completed, result, expires_at = row
        if completed:
            return Claim("completed", expires_at - now, result=json.loads(result or "null"))
        return Claim("in_progress", expires_at - now)

    def complete(self, key: str, token: str, result: str, expires: float) -> bool:
        with self._lock:
            row = self._rows.get(key)
            if row is None or row[0] != token or row[1]:
                return False
            self._rows[key] = (token, True, result, self._clock() + expires)
            return True

    def release(self, key: str, token: str) -> bool:
        with self._lock:
            row = self._rows.get(key)
            if row is None or row[0] != token or row[1]:
                return False
            del self._rows[key]
            return True


class HttpRecords:
    """The node's records, through its API, each call signed (AWS Signature Version
    4) with the function's own access key."""

    def __init__(
        self, endpoint: str, access_key: str, secret_key: str, *, region: str = "us-east-1"
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"AWS_ENDPOINT_URL {endpoint!r} is not an http(s) URL of a Triggerfish node"
            )
        self._base = endpoint.rstrip("/")
        self._host = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> HttpRecords:
        """The records of the function this environment runs (``ConfigError`` outside
        one, saying what to do)."""
        env = os.environ if environ is None else environ
        names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ConfigError(
                f"@idempotent keeps its records in Triggerfish, reached with {', '.join(names)} "
                f"(set for every function it runs); {', '.join(missing)} is not set here. "
                "Outside Triggerfish (in unit tests), pass records=MemoryRecords()"
            )
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(
            env["AWS_ENDPOINT_URL"],
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            region=region,
        )

    def claim(self, key: str, lease: float) -> Claim:
        status, answer = self._post("claim", {"key": key, "lease": lease})
        if status != 200:
            raise self._failed("claim", status, answer)
        return Claim(
            answer["status"],
            float(answer["expires_in"]),
            token=answer.get("token"),
            result=answer.get("result"),
        )

    def complete(self, key: str, token: str, result: str, expires: float) -> bool:
        body = {"key": key, "token": token, "result": _Raw(result), "expires": expires}
        status, answer = self._post("complete", body)
        if status == 409:
            return False
        if status != 200:
            raise self._failed("complete", status, answer)
        return True

    def release(self, key: str, token: str) -> bool:
        status, answer = self._post("release", {"key": key, "token": token})
        if status != 200:
            raise self._failed("release", status, answer)
        return bool(answer.get("released"))

    def _post(self, operation: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        import urllib.error
        import urllib.request

        body = _encode(fields)
        path = self._prefix + _API + operation
        headers = signed_headers(
            "POST",
            self._host,
            path,
            body,
            access_key=self._access_key,
            secret_key=self._secret_key,
            region=self._region,
        )
        request = urllib.request.Request(
            self._base + _API + operation, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                answer = json.loads(text)
            except ValueError:
                answer = {"detail": text.decode("utf-8", "replace")[:500]}
            return exc.code, answer if isinstance(answer, dict) else {"detail": str(answer)}
        except (OSError, ValueError) as exc:
            raise IdempotencyError(
                f"cannot reach Triggerfish at {self._base} for the idempotency records: {exc}"
            ) from exc

    def _failed(self, operation: str, status: int, answer: dict[str, Any]) -> IdempotencyError:
        detail = answer.get("detail") or answer
        return IdempotencyError(
            f"Triggerfish refused to {operation} an idempotency record ({status}): {detail}"
        )


class _Raw(str):
    """JSON text to put in a body as it is."""

    __slots__ = ()


def _encode(fields: dict[str, Any]) -> bytes:
    parts = []
    for name, value in fields.items():
        text = value if isinstance(value, _Raw) else json.dumps(value)
        parts.append(f"{json.dumps(name)}:{text}")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def signed_headers(
    method: str,
    host: str,
    path: str,
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "triggerfish",
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers of a request signed with AWS Signature Version 4, as the node
    checks them (``security.sigv4.verify``); ``path`` as sent (already encoded)."""
    moment = now or datetime.now(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    payload = hashlib.sha256(body).hexdigest()
    headers = {
        "content-type": "application/json",
        "host": host,
        "x-amz-content-sha256": payload,
        "x-amz-date": amz_date,
    }
    names = sorted(headers)
    canonical = sigv4.canonical_request(method, path, [], headers, names, payload)
    scope = f"{date}/{region}/{service}/aws4_request"
    key = sigv4.signing_key(secret_key, date, region, service)
    signature = sigv4.sign(key, sigv4.string_to_sign(amz_date, scope, canonical))
    headers["authorization"] = (
        f"{sigv4.ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers

"""API tokens: issuing them, checking them, and the scopes they grant.

A token reads ``tfk_<id>_<secret>``: ``tfk_``, a 12-character id (lowercase letters and
digits), ``_``, and a 32-character url-safe secret. Only the person it is issued to ever
sees it whole: Triggerfish keeps a ``TokenRecord`` with the id and a SHA-256 hash of the
token, never the secret, and compares hashes in constant time. Storing records is the
caller's business (``verify`` takes a ``lookup`` function), so this module does no I/O
except for ``AdminTokenFile``.

Scopes are permissions (``security.permissions``): ``admin`` grants everything;
``publish`` (send events), ``invoke`` (call functions), ``deploy`` (change functions and
triggers), ``read`` (list and inspect), ``s3:read`` and ``s3:write`` grant one thing
each, on every resource or on those a pattern names (``publish:orders``,
``invoke:resize:live``). A token may expire (``expires_at``); an expired token is
refused as a revoked one is.

``AdminTokenFile`` gives a fresh installation its first token: it creates an admin
token on first start and writes it to a file that only its owner can read (mode 0600),
atomically, so two nodes starting at once end up with the same one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
import string
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from triggerfish.errors import AuthError, ConfigError, ValidationError
from triggerfish.security.permissions import ACTIONS, ANY, Permission, Policy, Principal
from triggerfish.security.permissions import ADMIN as ADMIN
from triggerfish.security.permissions import DEPLOY as DEPLOY
from triggerfish.security.permissions import INVOKE as INVOKE
from triggerfish.security.permissions import PUBLISH as PUBLISH
from triggerfish.security.permissions import READ as READ

TOKEN_PREFIX = "tfk_"
ID_LENGTH = 12
SECRET_LENGTH = 32

SCOPES = frozenset(ACTIONS)

_ID_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN = re.compile(rf"tfk_([a-z0-9]{{{ID_LENGTH}}})_([A-Za-z0-9_\-]{{{SECRET_LENGTH}}})")


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What Triggerfish keeps about a token: enough to check it, never enough to use it."""

    id: str
    name: str
    secret_hash: str
    scopes: tuple[str, ...]  # permissions, as text: "publish", "publish:orders"
    created_at: float
    revoked: bool = False
    expires_at: float | None = None
    policy: Policy = field(init=False, repr=False, compare=False)
    principal: Principal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        policy = Policy.parse(self.scopes)
        object.__setattr__(self, "policy", policy)
        principal = Principal("token", self.id, self.name, policy, expires_at=self.expires_at)
        object.__setattr__(self, "principal", principal)

    def allows(self, scope: str, resource: str = ANY) -> bool:
        return self.policy.allows(scope, resource)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    def __repr__(self) -> str:
        return (
            f"TokenRecord(id={self.id!r}, name={self.name!r}, scopes={self.scopes!r}, "
            f"revoked={self.revoked}, expires_at={self.expires_at!r})"
        )


def hash_token(token_text: str) -> str:
    """The hex SHA-256 of the whole token (its id included, so a hash fits only its id)."""
    return hashlib.sha256(token_text.encode("utf-8")).hexdigest()


def _check_scopes(scopes: Sequence[str | Permission]) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = [scopes]
    checked = []
    for scope in scopes:
        if isinstance(scope, Permission):
            checked.append(str(scope))
            continue
        try:
            checked.append(str(Permission.parse(scope)))
        except ValidationError:
            if ":" in scope:
                raise
            raise ValidationError(
                f"unknown scope {scope!r}; choose from {', '.join(ACTIONS)}", field="scopes"
            ) from None
    if not checked:
        raise ValidationError(
            f"a token needs at least one scope; choose from {', '.join(ACTIONS)}",
            field="scopes",
        )
    return tuple(dict.fromkeys(checked))


def record_for_token(
    token_text: str,
    *,
    name: str,
    scopes: Sequence[str | Permission],
    created_at: float | None = None,
    expires_at: float | None = None,
) -> TokenRecord:
    """The record that verifies ``token_text`` (for a token read back from a file)."""
    token_id, _ = parse_token(token_text)
    if not name.strip():
        raise ValidationError("a token needs a name, to tell it apart later", field="name")
    created = time.time() if created_at is None else created_at
    if expires_at is not None and expires_at <= created:
        raise ValidationError("a token must expire after it is created", field="expires")
    return TokenRecord(
        id=token_id,
        name=name.strip(),
        secret_hash=hash_token(token_text),
        scopes=_check_scopes(scopes),
        created_at=created,
        expires_at=expires_at,
    )


def issue_token(
    name: str, scopes: Sequence[str | Permission], *, expires_at: float | None = None
) -> tuple[str, TokenRecord]:
    """A new token and its record; show the token once, store only the record."""
    token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))
    token_text = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(24)}"
    return token_text, record_for_token(token_text, name=name, scopes=scopes, expires_at=expires_at)


def parse_token(token_text: str) -> tuple[str, str]:
    """The ``(id, secret)`` of a well-formed token; ``AuthError`` otherwise."""
    match = _TOKEN.fullmatch(token_text)
    if match is None:
        # Never repeat the text: it may be a real secret pasted in the wrong place.
        raise AuthError(
            f"malformed API token: expected {TOKEN_PREFIX}, {ID_LENGTH} letters or digits, "
            f"'_' and {SECRET_LENGTH} more characters ({len(token_text)} characters were "
            "given); copy the whole token"
        )
    return match.group(1), match.group(2)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, if there is one."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def _presented(token_text: str | None) -> tuple[str, str]:
    """The stripped token and its id; ``AuthError`` when missing or malformed."""
    if token_text is None or not token_text.strip():
        raise AuthError("missing API token: send it as the header 'Authorization: Bearer tfk_...'")
    token_text = token_text.strip()
    token_id, _ = parse_token(token_text)
    return token_text, token_id


def _check(token_text: str, token_id: str, record: TokenRecord | None) -> TokenRecord:
    presented = hash_token(token_text)
    if record is None or not hmac.compare_digest(presented, record.secret_hash):
        # One message for both: a wrong secret must not reveal that the id exists.
        raise AuthError(
            f"unknown API token {TOKEN_PREFIX}{token_id}_...: it was not issued by this "
            "Triggerfish or has been deleted; ask an admin for a token"
        )
    if record.revoked:
        raise AuthError(
            f"API token {record.name!r} ({TOKEN_PREFIX}{token_id}_...) has been revoked; "
            "ask an admin for a new token"
        )
    if record.expired():
        raise AuthError(
            f"API token {record.name!r} ({TOKEN_PREFIX}{token_id}_...) expired at "
            f"{moment(record.expires_at)}; ask an admin for a new token"
        )
    return record


def moment(stamp: float | None) -> str:
    """A time for messages: ISO 8601 in UTC, to the second."""
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def verify(token_text: str | None, lookup: Callable[[str], TokenRecord | None]) -> TokenRecord:
    """The record of a valid, unrevoked, unexpired token; ``AuthError`` saying what is
    wrong otherwise.

    ``lookup`` takes a token id and returns its record, or ``None`` when there is none.
    """
    token_text, token_id = _presented(token_text)
    return _check(token_text, token_id, lookup(token_id))


async def verify_async(
    token_text: str | None, lookup: Callable[[str], Awaitable[TokenRecord | None]]
) -> TokenRecord:
    """``verify`` with a lookup that is a coroutine (a database query)."""
    token_text, token_id = _presented(token_text)
    return _check(token_text, token_id, await lookup(token_id))


def require(record: TokenRecord, scope: str, resource: str = ANY) -> None:
    """Raise ``PermissionDeniedError`` naming what is missing unless the token grants
    ``scope`` on ``resource`` (``*``: on everything)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(ACTIONS)}")
    record.principal.require(scope, resource)


def revoke(record: TokenRecord) -> TokenRecord:
    """The record marked revoked; store it in place of the old one."""
    return replace(record, revoked=True)


class AdminTokenFile:
    """The file holding the first admin token of an installation (mode 0600).

    ``ensure()`` returns ``(token_text, created)``: on first start it issues an admin
    token and writes it; later it reads it back. When ``created`` is true, store
    ``record_for_token(token_text, name=..., scopes=[ADMIN])`` so the token verifies.
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str = "admin") -> None:
        self.path = Path(path)
        self.name = name

    def read(self) -> str | None:
        """The token in the file, or ``None`` when there is no file yet."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the admin token file {self.path}: {exc}") from exc
        try:
            parse_token(text)
        except AuthError:
            raise ConfigError(
                f"the admin token file {self.path} does not hold a Triggerfish token; "
                "restore it, or delete it to have a new admin token created"
            ) from None
        self._tighten()
        return text

    def _tighten(self) -> None:
        # The file is a credential: if someone loosened its mode, close it again.
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            os.chmod(self.path, 0o600)

    def ensure(self) -> tuple[str, bool]:
        existing = self.read()
        if existing is not None:
            return existing, False
        token_text, _ = issue_token(self.name, [ADMIN])
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.fchmod(descriptor, 0o600)  # the umask may have taken bits we want
                os.write(descriptor, (token_text + "\n").encode("ascii"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            # A hard link never replaces an existing file: if another process won the
            # race, its token stays and we use it.
            try:
                os.link(temporary, self.path)
            except FileExistsError:
                winner = self.read()
                if winner is None:  # pragma: no cover - deleted between link and read
                    raise ConfigError(f"the admin token file {self.path} vanished") from None
                return winner, False
        finally:
            temporary.unlink(missing_ok=True)
        self._sync_directory()
        return token_text, True

    def _sync_directory(self) -> None:
        descriptor = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

"""Access keys for the S3-compatible API: an access key id and a secret access key.

AWS Signature Version 4 is checked by recomputing the signature, so the server needs
the secret itself, not a hash of it. Secrets are therefore kept in the store's
documents (kind ``access-key``, named by key id) encrypted with AES-256-GCM under a
key held in a file of the data directory, readable by its owner only (mode 0600). A
copy of the store alone does not reveal a secret; nodes sharing a store must share
that file.

Key ids read like AWS's: ``TF`` and 18 uppercase letters and digits. Secrets are 40
characters. A revoked key stays listed and no longer signs anything.

Each key carries permissions (``security.permissions``) and may expire. A key created
without permissions may do everything (``admin``), as every key could before keys had
permissions; so may a key stored before then. Every function gets a key of its own
(``function_credentials``), named after it, holding exactly what its manifest grants
(nothing by default): a deploy sets them (``grant_function``), a delete revokes the
key (``retire_function``). A key that verified once is kept in memory with its
permissions; ``forget`` drops them all, so that a change another node of a cluster
made (a redeploy, a delete, a revocation, which ``announce`` tells them of) is read
from the store on the next request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from triggerfish.errors import ConfigError, NotFoundError, ValidationError
from triggerfish.security.last_use import LastUse
from triggerfish.security.permissions import ADMIN, Permission, Policy, Principal
from triggerfish.security.sigv4 import S3AuthError
from triggerfish.security.tokens import moment

if TYPE_CHECKING:
    from triggerfish.store.sql import SqlStore

KIND = "access-key"
ID_PREFIX = "TF"
_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """What is listed about a key; the secret is never part of it."""

    id: str
    name: str
    created_at: float
    function: str | None = None
    revoked: bool = False
    permissions: tuple[str, ...] = ()
    expires_at: float | None = None


class SecretBox:
    """Encrypts secrets with a 256-bit key kept in ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._aead: AESGCM | None = None

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> None:
        """Read the key file now, creating it when there is none."""
        self._cipher()

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self._load_or_create())
        return self._aead

    def _load_or_create(self) -> bytes:
        try:
            key = self._path.read_bytes()
        except FileNotFoundError:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(AESGCM.generate_key(bit_length=256))
                out.flush()
                os.fsync(out.fileno())
            # link() fails if another process created the file first: then use theirs.
            with contextlib.suppress(FileExistsError):
                os.link(temp, self._path)
            temp.unlink()
            key = self._path.read_bytes()
        if len(key) != 32:
            raise ConfigError(f"{self._path}: expected a 32-byte key, found {len(key)} bytes")
        return key

    def seal(self, secret: str, key_id: str) -> str:
        nonce = os.urandom(12)
        sealed = self._cipher().encrypt(nonce, secret.encode("utf-8"), key_id.encode("ascii"))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, key_id: str) -> str:
        blob = base64.b64decode(sealed)
        try:
            plain = self._cipher().decrypt(blob[:12], blob[12:], key_id.encode("ascii"))
        except InvalidTag:
            raise ConfigError(
                f"the secret of access key {key_id} cannot be decrypted with {self._path}; "
                "nodes sharing a store must share that file"
            ) from None
        return plain.decode("utf-8")


def new_key_id() -> str:
    return ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(18))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _permissions(body: dict[str, Any]) -> tuple[str, ...]:
    stored = body.get("permissions")
    if stored is None:  # a key made before keys had permissions
        return () if body.get("function") else (ADMIN,)
    return tuple(str(text) for text in stored)


def _listed(key_id: str, body: dict[str, Any]) -> AccessKey:
    expires = body.get("expires_at")
    return AccessKey(
        id=key_id,
        name=str(body.get("name", "")),
        created_at=float(body.get("created_at", 0.0)),
        function=body.get("function"),
        revoked=bool(body.get("revoked", False)),
        permissions=_permissions(body),
        expires_at=None if expires is None else float(expires),
    )


def _principal(key: AccessKey) -> Principal:
    return Principal(
        "key",
        key.id,
        key.name,
        Policy.parse(key.permissions),
        expires_at=key.expires_at,
        function=key.function,
    )


def _texts(permissions: Sequence[str | Permission]) -> list[str]:
    return list(
        dict.fromkeys(
            str(p if isinstance(p, Permission) else Permission.parse(p)) for p in permissions
        )
    )


class AccessKeys:
    """The access keys of an installation; secrets are cached in memory once read."""

    def __init__(
        self,
        store: SqlStore,
        key_file: Path,
        *,
        last_use: LastUse | None = None,
        announce: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._announce = announce
        self._box = SecretBox(key_file)
        self._cache: dict[str, tuple[str, Principal]] = {}  # key id -> secret, principal
        self._function_lock = asyncio.Lock()
        self.last_use = last_use or LastUse(store)

    async def start(self) -> None:
        """Load (or create) the key file, and check that it opens the secrets already
        in the store: a node of a cluster started with a key file of its own stops
        here, with what to do, rather than failing later on every signed request."""
        self._cache.clear()
        await asyncio.to_thread(self._box.load)
        for key_id, body in (await self._store.documents.list(KIND)).items():
            if isinstance(body.get("secret"), str):
                try:
                    self._box.open(body["secret"], key_id)
                except ConfigError:
                    raise ConfigError(
                        f"{self._box.path} does not open the access keys in the store: every "
                        "node sharing a store must have the same key file; copy it from "
                        "the first node's data directory"
                    ) from None
                break

    async def create(
        self,
        name: str = "",
        *,
        function: str | None = None,
        permissions: Sequence[str | Permission] | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, str]:
        """A new key: returns (key id, secret); the secret is shown only here. Without
        ``permissions`` a key may do everything, a function's key nothing."""
        if len(name) > 200:
            raise ValidationError("an access key name has at most 200 characters", field="name")
        if permissions is None:
            permissions = [] if function is not None else [ADMIN]
        created = time.time()
        if expires_at is not None and expires_at <= created:
            raise ValidationError("an access key must expire after it is created", field="expires")
        key_id, secret = new_key_id(), new_secret()
        body: dict[str, Any] = {
            "name": name,
            "secret": self._box.seal(secret, key_id),
            "created_at": created,
            "revoked": False,
            "permissions": _texts(permissions),
        }
        if function is not None:
            body["function"] = function
        if expires_at is not None:
            body["expires_at"] = expires_at
        await self._store.documents.put(KIND, key_id, body)
        self._cache[key_id] = (secret, _principal(_listed(key_id, body)))
        return key_id, secret

    async def secret(self, key_id: str) -> str | None:
        """The secret of a valid (not revoked) key; None otherwise. An expired key still
        has one, so that its signature is checked before ``principal`` refuses it."""
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached[0]
        if not key_id.startswith(ID_PREFIX):
            return None
        body = await self._store.documents.find(KIND, key_id)
        if body is None or body.get("revoked"):
            return None
        secret = self._box.open(str(body["secret"]), key_id)
        self._cache[key_id] = (secret, _principal(_listed(key_id, body)))
        return secret

    def principal(self, key_id: str) -> Principal:
        """Who signed with ``key_id``, once ``secret`` gave the secret the signature was
        checked with; ``S3AuthError`` (InvalidAccessKeyId) for a key that expired or
        was revoked since."""
        cached = self._cache.get(key_id)
        if cached is None:
            raise S3AuthError(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        principal = cached[1]
        if principal.expires_at is not None and time.time() >= principal.expires_at:
            raise S3AuthError(
                "InvalidAccessKeyId",
                f"{principal.label} expired at {moment(principal.expires_at)}; "
                "create a new one with `triggerfish keys create`",
            )
        self.last_use.touch(key_id)
        return principal

    async def get(self, key_id: str) -> AccessKey:
        body = await self._store.documents.find(KIND, key_id)
        if body is None:
            raise NotFoundError(f"no access key {key_id!r}; `triggerfish keys ls` lists them")
        return _listed(key_id, body)

    async def list(self) -> list[AccessKey]:
        found = await self._store.documents.list(KIND)
        keys = [_listed(key_id, body) for key_id, body in found.items()]
        return sorted(keys, key=lambda key: key.created_at)

    async def revoke(self, key_id: str) -> AccessKey:
        body = await self._store.documents.find(KIND, key_id)
        if body is None:
            raise NotFoundError(f"no access key {key_id!r}; `triggerfish keys ls` lists them")
        body["revoked"] = True
        await self._store.documents.put(KIND, key_id, body)
        self._cache.pop(key_id, None)
        if self._announce is not None:  # other nodes ``forget`` the keys they keep
            await self._announce()
        return _listed(key_id, body)

    def forget(self) -> None:
        """Drop every key kept in memory: the next request reads its key again."""
        self._cache.clear()

    async def for_function(self, function: str) -> tuple[str, str]:
        """The function's own key (created on first use, with no permissions):
        (key id, secret)."""
        async with self._function_lock:
            found = await self._function_key(function)
            if found is not None:
                return found
            return await self.create(f"function {function}", function=function)

    async def grant_function(
        self, function: str, permissions: Sequence[str | Permission]
    ) -> tuple[str, str]:
        """Give the function's own key exactly ``permissions`` (creating the key when
        it has none): what a deploy does with the manifest's ``permissions:``."""
        texts = _texts(permissions)
        async with self._function_lock:
            found = await self._function_key(function)
            if found is None:
                return await self.create(
                    f"function {function}", function=function, permissions=texts
                )
            key_id, secret = found
            body = await self._store.documents.get(KIND, key_id)
            if body.get("permissions") != texts:
                body["permissions"] = texts
                await self._store.documents.put(KIND, key_id, body)
            self._cache[key_id] = (secret, _principal(_listed(key_id, body)))
            return key_id, secret

    async def retire_function(self, function: str) -> tuple[str, ...]:
        """Revoke every key of a function that was deleted; their ids."""
        async with self._function_lock:
            retired = [
                key.id for key in await self.list() if key.function == function and not key.revoked
            ]
            for key_id in retired:
                await self.revoke(key_id)
            return tuple(retired)

    async def retire_orphans(
        self, functions: Callable[[], Awaitable[Iterable[str]]]
    ) -> tuple[str, ...]:
        """Revoke the keys of functions that no longer exist (deleted by a release whose
        keys outlived their function); their ids. ``functions`` is read after the keys:
        a function's key is made after the function is stored, so one deployed
        meanwhile on another node is among them."""
        async with self._function_lock:
            keys = await self.list()
            alive = set(await functions())
            orphans = [
                key.id
                for key in keys
                if key.function is not None and key.function not in alive and not key.revoked
            ]
            for key_id in orphans:
                await self.revoke(key_id)
            return tuple(orphans)

    async def _function_key(self, function: str) -> tuple[str, str] | None:
        for key in await self.list():
            if key.function == function and not key.revoked:
                secret = await self.secret(key.id)
                if secret is not None:
                    return key.id, secret
        return None


async def function_credentials(keys: AccessKeys, function: str) -> tuple[str, str]:
    """(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) for a function's environment."""
    return await keys.for_function(function)

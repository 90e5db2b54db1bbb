"""The API tokens of an installation: kept in the store, checked from memory.

On first start an admin token is created, written to the data directory (mode 0600)
and shown once. Token checks run on every ``/v1`` request, so records are cached;
issuing or revoking a token through the registry updates the cache. A token that
verified once is remembered by its text (at most ``VERIFIED_CACHE`` of them), so the
next request with it skips parsing and hashing; revoking any token forgets them all.

A token's permissions are its stored scopes (``security.permissions``); its expiry, when
it has one, is a document of kind ``token`` named by its id, written before the token
itself so that a token is never stored without it. A token id this node does not know
(one issued by another node of a cluster) is looked up in the store, at most once a
second. A revocation is announced (``announce``: on a cluster, the node's
``ChangeWatcher``), and every node reloads its tokens when it hears of a change. Every
use is noted for ``tokens ls`` (``security.last_use``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from triggerfish.errors import AuthError, ConflictError, NotFoundError
from triggerfish.security.last_use import LastUse
from triggerfish.security.permissions import ANY, Permission, Principal
from triggerfish.security.tokens import (
    ADMIN,
    AdminTokenFile,
    TokenRecord,
    issue_token,
    parse_token,
    record_for_token,
    require,
    revoke,
    verify,
)
from triggerfish.store.records import StoredToken
from triggerfish.store.sql import SqlStore

VERIFIED_CACHE = 1024
KIND = "token"
RELOAD_EVERY = 1.0  # seconds between store look-ups of unknown token ids


def _to_stored(record: TokenRecord) -> StoredToken:
    return StoredToken(
        id=record.id,
        name=record.name,
        secret_hash=record.secret_hash,
        scopes=tuple(record.scopes),
        created_at=record.created_at,
        revoked=record.revoked,
    )


def _from_stored(stored: StoredToken, expires_at: float | None = None) -> TokenRecord:
    return TokenRecord(
        id=stored.id,
        name=stored.name,
        secret_hash=stored.secret_hash,
        scopes=tuple(stored.scopes),
        created_at=stored.created_at,
        revoked=stored.revoked,
        expires_at=expires_at,
    )


class TokenRegistry:
    def __init__(
        self,
        store: SqlStore,
        admin_file: Path,
        *,
        last_use: LastUse | None = None,
        announce: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._announce = announce
        self._admin_file = AdminTokenFile(admin_file)
        self._admin_id: str | None = None
        self._records: dict[str, TokenRecord] = {}
        self._verified: dict[str, TokenRecord] = {}  # token text -> its record
        self._looked_up = float("-inf")  # when an unknown id last made us reload
        self.last_use = last_use or LastUse(store)

    async def start(self) -> str | None:
        """Load the tokens; create the admin token on first start and return its text
        (None when it already existed)."""
        await self.reload()
        text, created = self._admin_file.ensure()
        admin = record_for_token(text, name="admin", scopes=[ADMIN])
        self._admin_id = admin.id
        if admin.id not in self._records:
            # A first start, or a store that was reset under an existing token file.
            await self._store.put_token(_to_stored(admin))
            self._records[admin.id] = admin
        return text if created else None

    async def reload(self) -> None:
        """Read every token from the store again (those other nodes issued or revoked)."""
        expiries = await self._store.documents.list(KIND)
        self._records = {
            stored.id: _from_stored(stored, expiries.get(stored.id, {}).get("expires_at"))
            for stored in await self._store.list_tokens()
        }
        self._verified.clear()

    def _verify(self, token_text: str) -> TokenRecord:
        record = self._verified.get(token_text)
        if record is None:
            record = verify(token_text, self._records.get)
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token_text] = record
        elif record.expired():
            record = verify(token_text, self._records.get)  # raises, saying so
        self.last_use.touch(record.id)
        return record

    def authorize(self, token_text: str, scope: str, resource: str = ANY) -> TokenRecord:
        """The record of a valid token that may ``scope`` on ``resource``; raises
        ``AuthError`` (``PermissionDeniedError`` for a valid token that may not)."""
        record = self._verify(token_text)
        require(record, scope, resource)
        return record

    def principal(self, token_text: str) -> Principal:
        """Who a valid token is, for checks the caller makes; ``AuthError`` otherwise."""
        return self._verify(token_text).principal

    async def principal_async(self, token_text: str) -> Principal:
        """``principal``, looking an unknown token id up in the store first."""
        if token_text not in self._verified:
            await self._find(token_text)
        return self.principal(token_text)

    async def _find(self, token_text: str) -> None:
        try:
            token_id, _ = parse_token(token_text.strip())
        except AuthError:
            return  # ``principal`` explains what is wrong with it
        if token_id in self._records or time.monotonic() - self._looked_up < RELOAD_EVERY:
            return
        self._looked_up = time.monotonic()
        await self.reload()

    async def issue(
        self, name: str, scopes: Sequence[str | Permission], *, expires_at: float | None = None
    ) -> tuple[str, TokenRecord]:
        text, record = issue_token(name, scopes, expires_at=expires_at)
        if expires_at is not None:
            await self._store.documents.put(KIND, record.id, {"expires_at": expires_at})
        await self._store.put_token(_to_stored(record))
        self._records[record.id] = record
        return text, record

    async def revoke(self, token_id: str) -> TokenRecord:
        if token_id == self._admin_id:
            raise ConflictError(
                "this is the installation's admin token (admin.token in the data directory); "
                "to replace it, delete that file and restart: a new one is made"
            )
        if token_id not in self._records:
            await self.reload()
        if token_id not in self._records:
            raise NotFoundError(f"no API token {token_id!r}; `triggerfish tokens ls` lists them")
        await self._store.revoke_token(token_id)
        self._verified.clear()
        self._records[token_id] = revoke(self._records[token_id])
        if self._announce is not None:
            await self._announce()
        return self._records[token_id]

    def list(self) -> list[TokenRecord]:
        return sorted(self._records.values(), key=lambda r: r.created_at)

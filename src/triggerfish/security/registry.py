"""The API tokens of an installation: kept in the store, checked from memory.

On first start an admin token is created, written to the data directory (mode 0600)
and shown once. Token checks run on every ``/v1`` request, so records are cached;
issuing or revoking a token through the registry updates the cache. A token that
verified once is remembered by its text (at most ``VERIFIED_CACHE`` of them), so the
next request with it skips parsing and hashing; revoking any token forgets them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from triggerfish.security.tokens import (
    ADMIN,
    AdminTokenFile,
    TokenRecord,
    issue_token,
    record_for_token,
    require,
    revoke,
    verify,
)
from triggerfish.store.records import StoredToken
from triggerfish.store.sql import SqlStore

VERIFIED_CACHE = 1024


def _to_stored(record: TokenRecord) -> StoredToken:
    return StoredToken(
        id=record.id,
        name=record.name,
        secret_hash=record.secret_hash,
        scopes=tuple(record.scopes),
        created_at=record.created_at,
        revoked=record.revoked,
    )


def _from_stored(stored: StoredToken) -> TokenRecord:
    return TokenRecord(
        id=stored.id,
        name=stored.name,
        secret_hash=stored.secret_hash,
        scopes=tuple(stored.scopes),
        created_at=stored.created_at,
        revoked=stored.revoked,
    )


class TokenRegistry:
    def __init__(self, store: SqlStore, admin_file: Path) -> None:
        self._store = store
        self._admin_file = AdminTokenFile(admin_file)
        self._records: dict[str, TokenRecord] = {}
        self._verified: dict[str, TokenRecord] = {}  # token text -> its record

    async def start(self) -> str | None:
        """Load the tokens; create the admin token on first start and return its text
        (None when it already existed)."""
        self._records = {t.id: _from_stored(t) for t in await self._store.list_tokens()}
        self._verified.clear()
        text, created = self._admin_file.ensure()
        admin = record_for_token(text, name="admin", scopes=[ADMIN])
        if admin.id not in self._records:
            # A first start, or a store that was reset under an existing token file.
            await self._store.put_token(_to_stored(admin))
            self._records[admin.id] = admin
        return text if created else None

    def authorize(self, token_text: str, scope: str) -> TokenRecord:
        record = self._verified.get(token_text)
        if record is None:
            record = verify(token_text, self._records.get)
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token_text] = record
        require(record, scope)
        return record

    async def issue(self, name: str, scopes: Sequence[str]) -> tuple[str, TokenRecord]:
        text, record = issue_token(name, scopes)
        await self._store.put_token(_to_stored(record))
        self._records[record.id] = record
        return text, record

    async def revoke(self, token_id: str) -> None:
        await self._store.revoke_token(token_id)
        self._verified.clear()
        if token_id in self._records:
            self._records[token_id] = revoke(self._records[token_id])

    def list(self) -> list[TokenRecord]:
        return sorted(self._records.values(), key=lambda r: r.created_at)

"""Invocation records: what ran, when, with what outcome, kept in the store."""

from __future__ import annotations

from triggerfish.store.records import InvocationRecord
from triggerfish.store.sql import SqlStore


class Invocations:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def search(
        self,
        *,
        function: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        before: str | None = None,
        after: str | None = None,
    ) -> list[InvocationRecord]:
        """Newest first, paged with ``before``; or oldest first from ``after``."""
        return await self._store.list_invocations(
            function=function,
            status=status,
            trigger=trigger,
            since=since,
            until=until,
            limit=limit,
            before=before,
            after=after,
        )

    async def get(self, invocation_id: str) -> InvocationRecord:
        return await self._store.get_invocation(invocation_id)

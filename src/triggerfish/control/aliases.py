"""Aliases: names that point at one version of a function (``live`` is the one deploys
move). A move is in force for the next call and the next delivery of every trigger
that names the alias: ``changed`` runs after each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from triggerfish.store.records import AliasRecord
from triggerfish.store.sql import SqlStore


class Aliases:
    def __init__(self, store: SqlStore, *, changed: Callable[[str], Awaitable[None]]) -> None:
        self._store = store
        self._changed = changed

    async def all(self, function: str) -> list[AliasRecord]:
        """The aliases of ``function`` by name; NotFoundError when it does not exist."""
        return await self._store.list_aliases(function)

    async def find(self, function: str, alias: str) -> AliasRecord | None:
        """One alias of ``function``, None when it has none of that name; NotFoundError
        when the function does not exist."""
        for record in await self._store.list_aliases(function):
            if record.name == alias:
                return record
        return None

    async def numbers(self, function: str) -> dict[str, int]:
        """The number of each version of ``function``, by version id (one store read
        for any number of aliases)."""
        return {v.version: v.number for v in await self._store.list_versions(function)}

    async def set(self, function: str, alias: str, version: str | int) -> AliasRecord:
        """Point ``alias`` at a version (by id or number), creating the alias if needed."""
        record = await self._store.set_alias(function, alias, version)
        await self._changed(function)
        return record

    async def delete(self, function: str, alias: str) -> None:
        """Remove an alias (never ``live``)."""
        await self._store.delete_alias(function, alias)
        await self._changed(function)

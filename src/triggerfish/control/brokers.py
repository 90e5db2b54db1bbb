"""Named brokers that emits and destinations may target: their definitions, and the
relay each runs (``Sinks``), restarted on every change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from triggerfish.control.documents import typed_documents
from triggerfish.errors import NotFoundError
from triggerfish.functions.brokers import BrokerConfig
from triggerfish.sinks import Sinks, SinkStats, delete_broker, save_broker
from triggerfish.sinks.registry import KIND
from triggerfish.store.sql import SqlStore


class Brokers:
    def __init__(
        self, store: SqlStore, sinks: Sinks, *, changed: Callable[[], Awaitable[None]]
    ) -> None:
        self._store = store
        self._sinks = sinks
        self._changed = changed

    async def put(self, name: str, config: BrokerConfig) -> None:
        """Store a named broker and (re)start its relay."""
        await save_broker(self._store, name, config)
        await self._sinks.refresh()
        await self._changed()

    async def delete(self, name: str) -> None:
        """Remove a broker and stop its relay; NotFoundError when there is none. Its
        ``_sink.<name>`` topic stays, with what still waits there."""
        if await self._store.documents.find(KIND, name) is None:
            raise NotFoundError(f"no broker named {name!r}")
        await delete_broker(self._store, name)
        await self._sinks.refresh()
        await self._changed()

    async def all(self) -> dict[str, BrokerConfig]:
        """Every stored definition, by name in name order."""
        return await typed_documents(self._store, KIND, BrokerConfig)

    async def stats(self) -> dict[str, SinkStats]:
        """The counters of each running sink, by broker, ``pending`` read now."""
        await self._sinks.count_pending()
        return {s.broker: s for s in self._sinks.stats()}

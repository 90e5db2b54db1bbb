"""Inbound webhooks: their definitions (documents of kind ``webhook``), each publishing
to a topic that is created with it when missing."""

from __future__ import annotations

from triggerfish.bus.base import Bus
from triggerfish.control.documents import typed_documents
from triggerfish.functions.webhooks import WebhookConfig
from triggerfish.sources.webhooks import KIND, load_webhook, save_webhook
from triggerfish.store.sql import SqlStore


class Webhooks:
    def __init__(self, store: SqlStore, bus: Bus, *, retention: float | None) -> None:
        self._store = store
        self._bus = bus
        self._retention = retention  # of the topics made for webhooks

    async def put(self, name: str, config: WebhookConfig) -> None:
        """Create or replace a webhook, and its topic when it is missing."""
        await save_webhook(self._store, self._bus, name, config, retention=self._retention)

    async def get(self, name: str) -> WebhookConfig:
        """A webhook's definition; NotFoundError when there is none."""
        return await load_webhook(self._store, name)

    async def all(self) -> dict[str, WebhookConfig]:
        """Every definition, by name in name order."""
        return await typed_documents(self._store, KIND, WebhookConfig)

    async def delete(self, name: str) -> None:
        """Remove a webhook (its topic stays); NotFoundError when there is none."""
        if not await self._store.documents.delete(KIND, name):
            await load_webhook(self._store, name)  # raises NotFoundError

"""Inbound webhooks: their definitions (documents of kind ``webhook``), each publishing
to a topic that is created with it when missing.

A webhook's signing secret is stored as a reference (``{secret: NAME}``, ``env:NAME``)
or sealed (a literal secret, encrypted with the key file of the secrets); a reference
to a secret or a variable that does not exist is refused when the webhook is put."""

from __future__ import annotations

import logging
import os

from triggerfish.bus.base import Bus
from triggerfish.control.documents import typed_documents
from triggerfish.errors import ConfigError
from triggerfish.functions.references import SealedSecret
from triggerfish.functions.webhooks import WebhookConfig, sealed_for
from triggerfish.security.secrets import SecretStore
from triggerfish.sources.webhooks import KIND, load_webhook, save_webhook
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish.control")


class Webhooks:
    def __init__(
        self, store: SqlStore, bus: Bus, *, secrets: SecretStore, retention: float | None
    ) -> None:
        self._store = store
        self._bus = bus
        self._secrets = secrets
        self._retention = retention  # of the topics made for webhooks

    async def put(self, name: str, config: WebhookConfig) -> None:
        """Create or replace a webhook, and its topic when it is missing. A literal
        secret is stored sealed."""
        await self._check_secret(name, config)
        await save_webhook(
            self._store, self._bus, name, self._sealed(name, config), retention=self._retention
        )

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

    async def signing_secret(self, name: str, config: WebhookConfig) -> str | None:
        """The secret that signs the requests of webhook ``name`` (None when it is
        open), read now: a rotated secret is in force for the next request.
        ConfigError when what it refers to is gone."""
        secret = config.secret
        if secret is None:
            return None
        if isinstance(secret, SealedSecret):
            return self._secrets.open_sealed(secret.sealed, sealed_for(name))
        if (secret_name := config.secret_name) is not None:
            value = await self._secrets.value(secret_name)
            if value is None:
                raise ConfigError(_missing_secret(name, secret_name))
            return value
        if (variable := config.variable_name) is not None:
            found = os.environ.get(variable)
            if not found:
                raise ConfigError(_missing_variable(name, variable))
            return found
        assert isinstance(secret, str)
        return secret  # stored before secrets were sealed (``seal_stored`` seals it)

    async def seal_stored(self) -> None:
        """Seal the literal secrets of webhooks stored before they were sealed."""
        for name, config in (await self.all()).items():
            if config.literal_secret is not None:
                await save_webhook(
                    self._store,
                    self._bus,
                    name,
                    self._sealed(name, config),
                    retention=self._retention,
                )
                log.info("webhook %s: its literal secret is now stored encrypted", name)

    def _sealed(self, name: str, config: WebhookConfig) -> WebhookConfig:
        literal = config.literal_secret
        if literal is None:
            return config
        sealed = SealedSecret(sealed=self._secrets.seal(literal, sealed_for(name)))
        return config.model_copy(update={"secret": sealed})

    async def _check_secret(self, name: str, config: WebhookConfig) -> None:
        secret = config.secret
        if isinstance(secret, SealedSecret):
            self._secrets.open_sealed(secret.sealed, sealed_for(name))  # ConfigError
        elif (secret_name := config.secret_name) is not None:
            if not await self._secrets.exists(secret_name):
                raise ConfigError(_missing_secret(name, secret_name))
        elif (variable := config.variable_name) is not None and not os.environ.get(variable):
            raise ConfigError(_missing_variable(name, variable))


def _missing_secret(webhook: str, secret: str) -> str:
    return (
        f"webhook {webhook}: secret: the secret {secret!r} does not exist; set it with "
        f"`triggerfish secrets set {secret}` (the value on standard input), then deploy again"
    )


def _missing_variable(webhook: str, variable: str) -> str:
    return (
        f"webhook {webhook}: secret: env:{variable} is not set in the server's environment; "
        "set it where `triggerfish up` runs and restart it, or keep the value in Triggerfish "
        "(`triggerfish secrets set NAME`) and write `secret: {secret: NAME}`"
    )

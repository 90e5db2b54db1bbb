"""Functions: deploy and delete, and their descriptions (versions, aliases, triggers
with their backlogs).

A deploy checks the triggers against the source kinds this node runs, the
destinations against its brokers, and that every secret and server variable it refers
to exists, before anything is stored; after it, and after a delete, ``changed`` puts
the new state in force.

The secret of an HTTP route with ``auth: hmac`` written as itself is stored sealed
(``SecretStore.seal``, for that route's trigger) and opened by ``route_secret`` when a
request's signature is checked. A route stored as written by an older release still
works, and is sealed at its function's next deploy.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from triggerfish.bus.base import Bus
from triggerfish.control.secrets import check_environment
from triggerfish.dispatch.dispatcher import Dispatcher
from triggerfish.errors import ConfigError
from triggerfish.functions.brokers import parse_target
from triggerfish.functions.deployer import Deployer, DeployResult
from triggerfish.functions.manifest import FunctionConfig
from triggerfish.functions.permissions import granted
from triggerfish.functions.references import SealedSecret
from triggerfish.functions.triggers import HttpOptions, route_sealed_for
from triggerfish.security.access_keys import AccessKeys
from triggerfish.security.secrets import SecretStore
from triggerfish.sinks import Sinks
from triggerfish.sources.manager import SourceManager
from triggerfish.sources.routes import resolve_secret
from triggerfish.store.records import LIVE, TriggerRecord, VersionRecord
from triggerfish.store.sql import SqlStore

#: What a credential that may not deploy a function sees of its environment's values.
MASK = "****"


class Functions:
    def __init__(
        self,
        store: SqlStore,
        bus: Bus,
        *,
        deployer: Deployer,
        dispatcher: Dispatcher,
        sources: SourceManager,
        sinks: Sinks,
        secrets: SecretStore,
        changed: Callable[[str], Awaitable[None]],
        retention: float | None,
        access_keys: AccessKeys,
        deployed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._access_keys = access_keys
        self._secrets = secrets
        self._bus = bus
        self._deployer = deployer
        self._dispatcher = dispatcher
        self._sources = sources
        self._sinks = sinks
        self._changed = changed
        self._deployed = deployed
        self._retention = retention  # of the topics destinations create

    async def deploy(
        self, name: str, config: FunctionConfig, code_zip: bytes, *, origin: str = "config: "
    ) -> DeployResult:
        """Deploy one function from its settings and its zipped code. ``origin`` starts
        the messages of configuration errors (the manifest's key path)."""
        self._sources.validate(config.triggers, origin=origin)
        await self._check_destinations(config, origin=origin)
        await check_environment(self._secrets, name, config.environment, where=origin)
        _check_route_variables(config, origin=origin)
        config = self._sealed_routes(name, config, origin=origin)
        result = await self._deployer.deploy(name, config, code_zip)
        # The function's own key holds what its manifest grants, no more (and is made
        # now, when this is the function's first deploy).
        await self._access_keys.grant_function(name, granted(config))
        await self._changed(name)
        if result.created and self._deployed is not None:
            await self._deployed(name)
        return result

    async def delete(self, name: str) -> None:
        """Delete a function with its versions, aliases and triggers; its environments
        are stopped (invocations in flight finish)."""
        await self._store.delete_function(name)
        await self._access_keys.retire_function(name)  # its key dies with it
        await self._changed(name)

    def route_secret(self, trigger_id: str, options: HttpOptions) -> str | None:
        """The secret that signs the requests of the HTTP route of trigger
        ``trigger_id`` (None when it has none); ConfigError when a variable it reads
        is not set or its sealed secret does not open."""
        secret = options.secret
        if isinstance(secret, SealedSecret):
            return self._secrets.open_sealed(secret.sealed, route_sealed_for(trigger_id))
        return None if secret is None else resolve_secret(secret)

    def _sealed_routes(self, name: str, config: FunctionConfig, *, origin: str) -> FunctionConfig:
        """``config`` with the literal secret of each HTTP route sealed for its trigger;
        ConfigError for a sealed one that does not open for it."""
        triggers = []
        for index, trigger in enumerate(config.triggers):
            http, purpose = trigger.http, route_sealed_for(trigger.group_id(name))
            if http is not None and isinstance(http.secret, SealedSecret):
                try:
                    self._secrets.open_sealed(http.secret.sealed, purpose)
                except ConfigError as exc:
                    raise ConfigError(f"{origin}triggers[{index}].http.secret: {exc}") from None
            elif http is not None and (literal := http.literal_secret) is not None:
                secret = SealedSecret(sealed=self._secrets.seal(literal, purpose))
                http = http.model_copy(update={"secret": secret})
                trigger = trigger.model_copy(update={"http": http})
            triggers.append(trigger)
        return config.model_copy(update={"triggers": triggers})

    async def _check_destinations(self, config: FunctionConfig, *, origin: str) -> None:
        """Destinations must name brokers this server has; their topics are created."""
        existing: set[str] | None = None
        for key in ("on_success", "on_failure"):
            text = getattr(config.destinations, key)
            if text is None:
                continue
            target = parse_target(text)
            if target.broker is not None:
                if not self._sinks.known(target.broker):
                    known = ", ".join(self._sinks.names) or "none"
                    raise ConfigError(
                        f"{origin}destinations.{key}: no broker named {target.broker!r} on "
                        f"this server (brokers: {known}); declare it under 'brokers:' in "
                        "triggerfish.yaml and deploy"
                    )
                continue
            if existing is None:
                existing = {topic.name for topic in await self._bus.topics()}
            if target.address not in existing:
                await self._bus.create_topic(target.address, retention=self._retention)
                existing.add(target.address)

    # -- reads -------------------------------------------------------------------------

    async def names(self) -> list[str]:
        """The name of every function, in name order."""
        return [function.name for function in await self._store.list_functions()]

    async def version(self, function: str, qualifier: str = LIVE) -> VersionRecord:
        """The version ``qualifier`` names (an alias, a version number or id,
        ``$LATEST``); NotFoundError when there is none."""
        return await self._store.resolve(function, qualifier)

    async def versions(self, function: str) -> list[VersionRecord]:
        """Every version of ``function``, by number."""
        return await self._store.list_versions(function)

    async def trigger_records(self) -> list[TriggerRecord]:
        """The stored triggers of every function."""
        return await self._store.list_triggers()

    async def describe_all(self) -> list[dict[str, Any]]:
        """Each function with its live version's number and main settings."""
        out = []
        for function in await self._store.list_functions():
            live = await self._store.resolve(function.name, LIVE)
            settings = live.settings
            out.append(
                {
                    "name": function.name,
                    "version": live.version,
                    "number": live.number,
                    "runtime": settings.runtime,
                    "handler": settings.handler,
                    "memory": settings.memory,
                    "updated_at": function.updated_at,
                }
            )
        return out

    async def describe(self, name: str, *, environment_values: bool = True) -> dict[str, Any]:
        """One function: its versions (with their stored settings), aliases, triggers.
        Without ``environment_values`` each plain value of a version's environment is
        shown as ``MASK`` (names and secret references stay)."""
        function = await self._store.get_function(name)
        versions = await self._store.list_versions(name)
        aliases = await self._store.list_aliases(name)
        return {
            "name": function.name,
            "created_at": function.created_at,
            "updated_at": function.updated_at,
            "versions": [
                {
                    "version": v.version,
                    "number": v.number,
                    "created_at": v.created_at,
                    "config": v.config if environment_values else _masked(v.config),
                }
                for v in versions
            ],
            "aliases": {a.name: a.version for a in aliases},
            "triggers": await self.triggers(name),
            # The triggers as declared (what ``triggerfish export`` writes back).
            "trigger_configs": [t.config for t in await self._store.list_triggers(name)],
        }

    async def triggers(self, function: str | None = None) -> list[dict[str, Any]]:
        """The triggers this node runs (of ``function``, or all), with their backlogs."""
        groups = {(g.topic, g.group): g for g in await self._bus.groups()}
        out = []
        for sub in self._dispatcher.subscriptions:
            if function is not None and sub.function != function:
                continue
            group = groups.get((sub.topic, sub.id))
            out.append(
                {
                    "id": sub.id,
                    "function": sub.function,
                    "topic": sub.topic,
                    "filters": [*sub.filters, *sub.envelope_filters],
                    "retry": asdict(sub.retry),
                    "dead_letter": sub.dead_letter_topic,
                    "batch_size": sub.batch_size,
                    "backlog": group.backlog if group else 0,
                    "in_flight": group.in_flight if group else 0,
                    "waiting_retry": group.waiting_retry if group else 0,
                }
            )
        return out


def _masked(config: dict[str, Any]) -> dict[str, Any]:
    """A version's stored settings with the plain values of its environment masked."""
    environment = config.get("environment")
    if not isinstance(environment, dict):
        return config
    shown = {k: MASK if isinstance(v, str) else v for k, v in environment.items()}
    return {**config, "environment": shown}


def _check_route_variables(config: FunctionConfig, *, origin: str) -> None:
    """An HTTP route signed with ``env:NAME`` needs NAME set on this server."""
    for index, trigger in enumerate(config.triggers):
        http = trigger.http
        if http is None or http.auth != "hmac" or (variable := http.variable_name) is None:
            continue
        if not os.environ.get(variable):
            raise ConfigError(
                f"{origin}triggers[{index}].http.secret: env:{variable} is not set in the "
                "server's environment; set it where `triggerfish up` runs and restart it"
            )

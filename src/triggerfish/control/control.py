"""``Control``: the one place where what is deployed changes.

Every such operation, with its side effects, goes through it: deploys (of one function
or of a whole manifest), deletes, alias moves, topics, webhooks, brokers, replays and
redrives; so do the reads the API answers. The HTTP API, the Lambda API and
``triggerfish up --deploy`` call it; none of them reaches the store or the bus.

Each concept is one part, an attribute: ``functions``, ``aliases``, ``topics``,
``webhooks``, ``brokers``, ``invocations``, ``secrets``, ``bucket_settings`` (what S3
keeps with a bucket: its CORS rules), ``idempotency`` (the records of ``@idempotent``
handlers); ``specs`` resolves what the
executor runs (with the values of the secrets it refers to).
After a change of functions, aliases or triggers, ``changed`` puts it in force: it
is the one step every such change ends with. Its local half, ``invalidate_local``,
drops what this node derived from the store (resolved specs, the ``generation`` that
route tables and version-number caches compare against, the dispatcher's triggers,
the running sources) and rebuilds it, then keeps the live versions provisioned; it
serves a change made on this node and one made on another node of a cluster alike.
On a cluster, ``changed`` then announces the change (``announce``: the node's
``ChangeWatcher``), and every other node runs ``invalidate_local`` within a moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from triggerfish.bus.base import Bus
from triggerfish.control.aliases import Aliases
from triggerfish.control.brokers import Brokers
from triggerfish.control.bucket_settings import BucketSettings
from triggerfish.control.chains import Chains
from triggerfish.control.functions import Functions
from triggerfish.control.idempotency import Idempotency
from triggerfish.control.invocations import Invocations
from triggerfish.control.secrets import Secrets
from triggerfish.control.specs import Specs
from triggerfish.control.topics import Topics
from triggerfish.control.webhooks import Webhooks
from triggerfish.dispatch.dispatcher import Dispatcher
from triggerfish.errors import NotFoundError
from triggerfish.functions.deployer import Deployer, DeployResult
from triggerfish.functions.manifest import Manifest
from triggerfish.functions.package import pack_function
from triggerfish.functions.project import load_project
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.security.access_keys import AccessKeys
from triggerfish.security.secrets import SecretStore
from triggerfish.sinks import Sinks
from triggerfish.sources.manager import SourceManager
from triggerfish.store.sql import SqlStore


class Control:
    def __init__(
        self,
        store: SqlStore,
        bus: Bus,
        *,
        specs: Specs,
        deployer: Deployer,
        dispatcher: Dispatcher,
        sources: SourceManager,
        executor: ProcessExecutor,
        sinks: Sinks,
        secrets: SecretStore,
        retention: float | None,
        access_keys: AccessKeys,
        announce: Callable[[], Awaitable[None]] | None = None,
        warm_on_deploy: bool = True,
    ) -> None:
        self._store = store
        self._warm_on_deploy = warm_on_deploy
        self._access_keys = access_keys
        self._sinks = sinks
        self._announce = announce
        self._dispatcher = dispatcher
        self._sources = sources
        self._executor = executor
        self.specs = specs
        self.generation = 0  # grows with every change of functions, aliases or triggers
        self.functions = Functions(
            store,
            bus,
            deployer=deployer,
            dispatcher=dispatcher,
            sources=sources,
            sinks=sinks,
            secrets=secrets,
            changed=self.changed,
            deployed=self._deployed,
            retention=retention,
            access_keys=access_keys,
        )
        self.aliases = Aliases(store, changed=self.changed)
        self.topics = Topics(bus, dispatcher)
        self.webhooks = Webhooks(store, bus, secrets=secrets, retention=retention)
        self.secrets = Secrets(
            secrets, store, webhooks=self.webhooks, changed=self._secrets_changed
        )
        self.brokers = Brokers(store, sinks, changed=self._announced)
        self.invocations = Invocations(store)
        self.chains = Chains(store)
        self.bucket_settings = BucketSettings(store)
        self.idempotency = Idempotency(store)

    async def start(self) -> None:
        """Provision the live version of every function (once the executor runs), and
        seal the literal webhook secrets an older release stored as written."""
        await self.webhooks.seal_stored()
        # Keys of functions deleted by a release whose keys outlived their function.
        await self._access_keys.retire_orphans(self.functions.names)
        for function in await self._store.list_functions():
            await self._provision(function.name)

    async def deploy_manifest(self, project: Path | Manifest) -> list[DeployResult]:
        """Deploy a project (a ``triggerfish.yaml``, an ``App``, or a folder holding one:
        ``functions.project.load_project``; or a manifest read already): its brokers,
        topics and webhooks first, then each function in order, with its layers."""
        manifest = project if isinstance(project, Manifest) else load_project(project)
        for broker, broker_config in manifest.brokers.items():
            await self.brokers.put(broker, broker_config)
        for topic, topic_config in manifest.topics.items():
            await self.topics.create(topic, retention=topic_config.retention)
        for webhook, webhook_config in manifest.webhooks.items():
            await self.webhooks.put(webhook, webhook_config)
        results = []
        for name, config in manifest.functions.items():
            code_zip = await asyncio.to_thread(
                pack_function, manifest.code_dir(name), manifest.layer_dirs(name)
            )
            origin = f"{manifest.path}: functions.{name}."
            results.append(await self.functions.deploy(name, config, code_zip, origin=origin))
        return results

    async def changed(self, function: str) -> None:
        """Put a change of ``function`` (its versions, aliases or triggers) in force:
        calls and deliveries that follow it see it. Every such change ends here."""
        await self.invalidate_local(function)
        await self._announced()

    async def _secrets_changed(self) -> None:
        """A secret was set or removed: every node resolves the specs again (the
        functions whose values changed get new environments, see ``specs``)."""
        await self.invalidate_local()
        await self._announced()

    async def _announced(self) -> None:
        if self._announce is not None:
            await self._announce()

    async def invalidate_local(self, function: str | None = None) -> None:
        """Rebuild what this node derived from the store: resolved specs, the
        dispatcher's triggers and the running sources, and move ``generation`` on.
        Then the live version of ``function`` is provisioned (its environments stopped
        when the function is gone); with no function (a change made elsewhere), those
        of every function this node stores or runs."""
        self.specs.clear()
        self._access_keys.forget()  # a function's key may have new permissions, or died
        self.generation += 1
        await self._dispatcher.refresh()
        await self._sources.refresh()
        if function is not None:
            await self._provision(function)
            return
        await self._sinks.refresh()  # brokers may have changed too
        stored = {f.name for f in await self._store.list_functions()}
        running = {pool.function for pool in self._executor.pool_stats()}
        for name in sorted(stored | running):
            await self._provision(name)

    async def _deployed(self, function: str) -> None:
        """A deploy made a new version of ``function``: with ``warm_on_deploy``, one
        environment of its live version starts now, so the call that follows the deploy
        is a warm one (``ProcessExecutor.warm``)."""
        if not self._warm_on_deploy:
            return
        try:
            route = await self.specs.route(function)
        except NotFoundError:
            return
        self._executor.warm(route.main)

    async def _provision(self, function: str) -> None:
        """Start what a function's live version keeps ready: its ``min_warm``
        environments, and a spare process for runtimes that pre-start one; or stop the
        environments of a function that no longer exists."""
        try:
            route = await self.specs.route(function)
        except NotFoundError:
            await self._executor.retire(function)
            return
        await self._executor.provision(route.main)
        if route.additional is not None:  # a weighted live: both versions take calls
            await self._executor.provision(route.additional)

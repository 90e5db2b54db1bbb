"""Deploying functions: code and settings in, immutable versions and triggers out.

A deploy computes the version digest of the code and settings. The same digest as an
existing version creates nothing (``created=False``) and points ``live`` back at that
version if it had moved; a new digest stores the code by digest first, then installs its
dependencies (``functions.build``), then the version, so a version never exists without
its code and its environment, and a failed build leaves ``live`` where it was. Either
way the function's triggers become exactly those of the new settings; a trigger keeps its
id (its consumer group) while its function and name stay the same, so redeploys do not
lose its position in the topic.

A deploy moves ``live`` only while it follows deploys: once ``alias set`` pinned it, a
deploy leaves it where the user put it and says so (``DeployResult.notes``), until
``alias follow`` lets deploys move it again. A deploy of the version ``live`` already
runs moves nothing.

On a cluster (``blobs`` given: the store shared by every node) the code package is
also kept in the store by digest before the version exists, so every node can run
any version: a node that lacks a version's code fetches it by digest, unpacks it and
installs its dependencies once (``prepare``).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Protocol

from triggerfish.errors import NotFoundError, ValidationError
from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.build import Builder, BuildResult
from triggerfish.functions.fields import NAME_RULE
from triggerfish.functions.manifest import FunctionConfig, Manifest
from triggerfish.functions.package import pack_function, version_digest, version_id
from triggerfish.runtime.base import LATEST, FunctionSpec
from triggerfish.store.records import LIVE, AliasRecord, TriggerRecord, VersionRecord
from triggerfish.store.sql import SqlStore

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Blobs(Protocol):
    async def put_blob(self, digest: str, kind: str, data: bytes) -> None: ...

    async def get_blob(self, digest: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class DeployResult:
    function: str
    version: str
    number: int
    created: bool  # False when an identical version already existed
    triggers_added: tuple[str, ...] = ()
    triggers_removed: tuple[str, ...] = ()
    build: BuildResult | None = None  # None: the code has no requirements to install
    notes: tuple[str, ...] = ()  # what a person should know: a pinned ``live`` it left


class Deployer:
    def __init__(
        self,
        store: SqlStore,
        artifacts: ArtifactStore,
        *,
        builder: Builder | None = None,
        blobs: Blobs | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.builder = builder
        self.blobs = blobs
        self._fetching: dict[str, asyncio.Lock] = {}

    async def deploy(self, name: str, config: FunctionConfig, code_zip: bytes) -> DeployResult:
        """Deploy one function from its settings and its zipped code."""
        if not _NAME_RE.match(name):
            raise ValidationError(f"function name {name!r}: expected {NAME_RULE}", field="name")
        digest = await asyncio.to_thread(version_digest, code_zip, config)
        version = await self.store.find_version_by_digest(name, digest)
        created = version is None
        if version is None:
            await asyncio.to_thread(self.artifacts.put, digest, code_zip)
            if self.blobs is not None:
                await self.blobs.put_blob(digest, "code", code_zip)
            # Dependencies are installed before the version exists: a failed build
            # raises BuildError here and the live version stays as it was.
            build = await self._build(name, digest)
            version = await self.store.put_function_version(
                name, config.version_config(), digest, version_id(digest)
            )
        else:
            if not self.artifacts.has(digest):
                await asyncio.to_thread(self.artifacts.put, digest, code_zip)
            if self.blobs is not None:
                await self.blobs.put_blob(digest, "code", code_zip)
            build = await self._build(name, digest)
        live = await self.store.follow_deploy(name, version.version)
        notes: tuple[str, ...] = ()
        if live.version != version.version:
            notes = (await self._pinned_note(live),)
        triggers = [
            TriggerRecord(
                id=trigger.group_id(name),
                function=name,
                topic=trigger.bus_topic(name),
                qualifier=trigger.alias,
                config=trigger.model_dump(mode="json"),
            )
            for trigger in config.triggers
        ]
        added, removed = await self.store.replace_triggers(name, triggers)
        return DeployResult(
            function=name,
            version=version.version,
            number=version.number,
            created=created,
            triggers_added=tuple(added),
            triggers_removed=tuple(removed),
            build=build,
            notes=notes,
        )

    async def _pinned_note(self, live: AliasRecord) -> str:
        held = await self.store.get_version(live.function, live.version)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(live.pinned_at or 0))
        return (
            f"{LIVE} stays at version {held.number}, pinned by alias set at {when}; "
            f"`triggerfish alias follow {live.function} {LIVE}` to let deploys move it again"
        )

    async def _build(self, name: str, digest: str) -> BuildResult | None:
        if self.builder is None:
            return None
        return await self.builder.ensure(self.artifacts.path(digest), function=name)

    async def deploy_manifest(self, manifest: Manifest) -> list[DeployResult]:
        """Package each function's code folder and deploy it, in manifest order."""
        results = []
        for name, config in manifest.functions.items():
            code_zip = await asyncio.to_thread(
                pack_function, manifest.code_dir(name), manifest.layer_dirs(name)
            )
            results.append(await self.deploy(name, config, code_zip))
        return results

    async def prepare(self, version: VersionRecord, *, qualifier: str = LIVE) -> FunctionSpec:
        """``spec_for``, after fetching the code of a version deployed through another
        node and installing its dependencies here, once per digest."""
        digest = version.digest
        if self.blobs is not None and not self.artifacts.has(digest):
            lock = self._fetching.setdefault(digest, asyncio.Lock())
            async with lock:
                if not self.artifacts.has(digest):
                    code_zip = await self.blobs.get_blob(digest)
                    if code_zip is not None:
                        await asyncio.to_thread(self.artifacts.put, digest, code_zip)
                        await self._build(version.function, digest)
            self._fetching.pop(digest, None)
        return self.spec_for(version, qualifier=qualifier)

    def spec_for(self, version: VersionRecord, *, qualifier: str = LIVE) -> FunctionSpec:
        """What the executor needs to run ``version``. ``qualifier`` is the alias or
        version it was reached by: ``$LATEST`` runs in environments of its own that name
        their version so (as Lambda's do), any other in those of the version number."""
        code_dir = self.artifacts.path(version.digest)
        if not code_dir.is_dir():
            raise NotFoundError(
                f"the code of {version.function}:{qualifier} (version {version.number}, "
                f"{version.version}) is not on this node; deploy it again"
            )
        config = version.settings
        python = None
        if self.builder is not None:
            what = f"{version.function}:{qualifier} (version {version.number})"
            python = self.builder.python_for(code_dir, what=what)
        return FunctionSpec(
            function=version.function,
            version=version.version,
            code_dir=code_dir,
            handler=config.handler,
            runtime=config.runtime,
            memory=config.memory,
            timeout=config.timeout,
            # Secret references are resolved by the caller (``control.specs``), per use.
            environment={k: v for k, v in config.environment.items() if isinstance(v, str)},
            max_concurrency=config.max_concurrency,
            min_warm=config.min_warm,
            idle_ttl=config.idle_ttl,
            max_invocations=config.max_invocations,
            snapstart=config.snapstart,
            durable=config.durable is not None,
            python=python,
            label=LATEST if qualifier == LATEST else str(version.number),
        )

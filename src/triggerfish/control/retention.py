"""``Retention``: what the housekeeping pass removes besides topic events, and the
SQLite space it gives back.

- Invocation records (with their logs) older than the node's ``records_retention``, or
  their function's own (``records_retention`` in the manifest, the newest version's),
  and the events of chains older than the longest of them. Records go in batches of
  ``batch`` rows, one short transaction each, with the event loop free between two, so
  ingest and dispatch never wait long for the store; a pass removes at most
  ``max_batches`` batches and the next pass goes on. Their usage stays as daily sums
  (``store/retention.py``), so costs do not change.
- Dependency environments (``functions/build.py``) that no version of any function
  uses any more, once they are older than ``build_grace`` (a deploy builds before it
  stores its version); looked for once per ``build_grace``.
- Multipart uploads to the buckets left incomplete for longer than ``upload_age``.
- Whatever else registers a pruner (``add_pruner``): durable executions, say.
- Then ``PRAGMA incremental_vacuum`` on the SQLite files of the store and the bus,
  bounded to ``vacuum_pages`` pages each.

What the store and the buckets of a cluster share is pruned by the leader alone
(``leading``); the environments and the SQLite files of a node by every node.
Expired idempotency records, topic events and dedupe keys are the housekeeping pass's
own (``control/housekeeping.py``); it reports them here (``count``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triggerfish.errors import TriggerfishError
from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.build import Builder
from triggerfish.sources.buckets import BucketStore
from triggerfish.store.retention import (
    Cutoff,
    give_back_space,
    prune_chain_events,
    prune_invocations,
    switch_to_incremental,
)
from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish")

Pruner = Callable[[], Awaitable[int]]
# A file up to this size is switched to incremental vacuum at the first pass; a larger
# one would be rewritten whole while the node waits: the log says how to do it offline.
SWITCH_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Hook:
    prune: Pruner
    shared: bool  # prunes what the nodes of a cluster share: on the leader alone


class Retention:
    def __init__(
        self,
        store: SqlStore,
        *,
        records_retention: float,
        leading: Callable[[], bool] = lambda: True,
        builder: Builder | None = None,
        artifacts: ArtifactStore | None = None,
        buckets: BucketStore | None = None,
        sqlite_files: tuple[str, ...] = (),
        vacuum: bool = True,
        batch: int = 5000,
        max_batches: int = 100,
        vacuum_pages: int = 4096,
        upload_age: float = 86400.0,
        build_grace: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.records_retention = records_retention
        self._leading = leading
        self._builder = builder
        self._artifacts = artifacts
        self._buckets = buckets
        # Without ``vacuum`` (``sqlite_vacuum = false``) files keep their free pages.
        self._files = sqlite_files if vacuum else ()
        self._batch = batch
        self._max_batches = max_batches
        self._vacuum_pages = vacuum_pages
        self._upload_age = upload_age
        self._build_grace = build_grace
        self._clock = clock
        self._hooks: dict[str, _Hook] = {}
        self._switched: set[str] = set()
        self._builds_checked: float | None = None
        self.pruned: dict[str, int] = {}  # rows (or folders) removed by kind since start
        self.last_run: float | None = None
        self.last_error: str | None = None
        self.overrides: dict[str, float] = {}  # functions' own records_retention

    def add_pruner(self, kind: str, prune: Pruner, *, shared: bool = True) -> None:
        """Run ``prune`` at every pass (on the leader alone when ``shared``); it returns
        how many of ``kind`` it removed."""
        self._hooks[kind] = _Hook(prune, shared)

    def count(self, kind: str, removed: int) -> None:
        """Add ``removed`` of ``kind`` to what retention removed since start."""
        if removed:
            self.pruned[kind] = self.pruned.get(kind, 0) + removed

    async def run(self) -> dict[str, int]:
        """One pass; returns what it removed by kind. A part that fails is logged and
        the others still run."""
        before = dict(self.pruned)
        errors: list[str] = []
        leading = self._leading()
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if leading:
            steps.append(("invocation records", self._prune_records))
            steps.append(("bucket uploads", self._prune_uploads))
        steps.append(("dependency environments", self._prune_builds))
        for kind, hook in self._hooks.items():
            if leading or not hook.shared:
                steps.append((kind, self._hook_step(kind, hook)))
        steps.append(("free pages", self._give_back_space))
        for what, step in steps:
            try:
                await step()
            except Exception as exc:
                errors.append(f"{what}: {exc}")
                log.exception("retention: pruning %s failed; will try again", what)
        self.last_run = self._clock()
        self.last_error = "; ".join(errors) or None
        return {k: n - before.get(k, 0) for k, n in self.pruned.items() if n != before.get(k, 0)}

    def to_json(self) -> dict[str, Any]:
        return {
            "records_retention": self.records_retention,
            "functions": dict(sorted(self.overrides.items())),
            "last_run": self.last_run,
            "last_error": self.last_error,
            "pruned": dict(sorted(self.pruned.items())),
        }

    # -- records -------------------------------------------------------------------------

    async def _prune_records(self) -> None:
        self.overrides = await self._function_retentions()
        now = self._clock()
        by_retention: dict[float, list[str]] = {}
        for name, seconds in self.overrides.items():
            by_retention.setdefault(seconds, []).append(name)
        cutoffs = [Cutoff(now - self.records_retention, others=tuple(self.overrides))]
        cutoffs += [Cutoff(now - s, functions=names) for s, names in by_retention.items()]
        for cutoff in cutoffs:
            for _ in range(self._max_batches):
                removed = await prune_invocations(self._store, cutoff, limit=self._batch)
                self.count("invocations", removed)
                await asyncio.sleep(0)  # the event loop's other work goes first
                if removed < self._batch:
                    break
        longest = max([self.records_retention, *self.overrides.values()])
        for _ in range(self._max_batches):
            removed = await prune_chain_events(self._store, now - longest, limit=self._batch)
            self.count("chain_events", removed)
            await asyncio.sleep(0)
            if removed < self._batch:
                break

    async def _function_retentions(self) -> dict[str, float]:
        """Each function's own ``records_retention``: its newest version's."""
        found: dict[str, float] = {}
        for function in await self._store.list_functions():
            try:
                versions = await self._store.list_versions(function.name)
            except TriggerfishError:  # deleted meanwhile
                continue
            if versions:
                seconds = versions[-1].config.get("records_retention")
                if isinstance(seconds, int | float) and seconds > 0:
                    found[function.name] = float(seconds)
        return found

    # -- environments and uploads --------------------------------------------------------

    async def _prune_builds(self) -> None:
        builder, artifacts = self._builder, self._artifacts
        if builder is None or artifacts is None:
            return
        # Reading every version's requirements is work: once per grace period is enough.
        now = self._clock()
        if self._builds_checked is not None and now - self._builds_checked < self._build_grace:
            return
        self._builds_checked = now
        if not await asyncio.to_thread(builder.root.is_dir):
            return
        used: set[str] = set()
        for function in await self._store.list_functions():
            try:
                versions = await self._store.list_versions(function.name)
            except TriggerfishError:
                continue
            for version in versions:
                used |= await asyncio.to_thread(_keys_of, builder, artifacts.path(version.digest))
        removed = await asyncio.to_thread(
            _remove_unused, builder.root, used, now - self._build_grace
        )
        self.count("environments", removed)

    async def _prune_uploads(self) -> None:
        buckets = self._buckets
        if buckets is None:
            return
        horizon = self._clock() - self._upload_age
        for bucket, _ in await buckets.list_buckets():
            for upload in await buckets.list_uploads(bucket):
                if upload.created < horizon:
                    try:
                        await buckets.abort_upload(bucket, upload.key, upload.id)
                    except TriggerfishError:  # completed or aborted meanwhile
                        continue
                    self.count("uploads", 1)

    def _hook_step(self, kind: str, hook: _Hook) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            self.count(kind, await hook.prune())

        return step

    # -- space ---------------------------------------------------------------------------

    async def _give_back_space(self) -> None:
        for path in self._files:
            if not await asyncio.to_thread(Path(path).is_file):
                continue
            if path not in self._switched:
                self._switched.add(path)  # tried (and said) once per start
                if not await asyncio.to_thread(switch_to_incremental, path, max_bytes=SWITCH_LIMIT):
                    log.warning(
                        "%s was made without incremental vacuum and is too large to switch"
                        " while the node runs; stop the node and run"
                        " `sqlite3 %s 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'` once,"
                        " so retention can give its free space back",
                        path,
                        path,
                    )
            await give_back_space(path, pages=self._vacuum_pages)


def _keys_of(builder: Builder, code_dir: Path) -> set[str]:
    """The environments the code in ``code_dir`` runs with, when it is on this node."""
    if not code_dir.is_dir():
        return set()
    found = {builder.requirements(code_dir), builder.node_requirements(code_dir)}
    return {wanted.key for wanted in found if wanted is not None}


def _remove_unused(root: Path, used: set[str], older_than: float) -> int:
    """Remove the environments under ``root`` not in ``used`` and last changed before
    ``older_than``, with their build logs; returns how many."""
    removed = 0
    for entry in root.iterdir():
        if entry.name.startswith("_") or not entry.is_dir() or entry.is_symlink():
            continue  # the runtime's links, and anything not an environment
        if entry.name in used or entry.stat().st_mtime >= older_than:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        (root / f"{entry.name}.log").unlink(missing_ok=True)
        removed += 1
    return removed

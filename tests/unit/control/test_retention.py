"""The retention pass of a node: records by the node's retention or their function's
own, on the leader alone; dependency environments no version uses; bucket uploads
left incomplete; pruners added by other parts; and what it reports."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from support.stores import Clock
from triggerfish.bus.memory import MemoryBus
from triggerfish.control import Housekeeping
from triggerfish.control.retention import Retention
from triggerfish.functions.artifacts import ArtifactStore
from triggerfish.functions.build import Builder
from triggerfish.ids import id_floor, new_id
from triggerfish.sources.buckets import BucketStore
from triggerfish.sources.buckets.store import NewObject
from triggerfish.store import InvocationRecord, SqlStore

DAY = 86400.0
NOW = 1_800_000_000.0


def made_at(at: float, function: str) -> InvocationRecord:
    return InvocationRecord(
        id=id_floor(at)[:10] + new_id()[10:],
        function=function,
        version="0123456789ab",
        status="ok",
        started_at=at,
        logs="some lines",
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def deploy(store: SqlStore, function: str, digest: str, **settings: Any) -> None:
    config = {"handler": "main.handler", **settings}
    await store.put_function_version(function, config, digest, digest[:12])


async def kept(store: SqlStore) -> list[tuple[str, float]]:
    rows = await store.list_invocations(limit=1000)
    return sorted((r.function, r.started_at) for r in rows)


async def test_a_functions_own_retention_overrides_the_nodes(store: SqlStore) -> None:
    await deploy(store, "audit", "a" * 64, records_retention=30 * 86400)
    await deploy(store, "chatty", "b" * 64, records_retention=3600)
    await deploy(store, "resize", "c" * 64)
    ages = (2 * 3600, 3 * DAY, 10 * DAY)
    await store.record_invocations(
        [made_at(NOW - age, name) for name in ("audit", "chatty", "resize") for age in ages]
    )
    retention = Retention(store, records_retention=7 * DAY, clock=lambda: NOW, batch=2)

    removed = await retention.run()

    assert await kept(store) == [
        ("audit", NOW - 10 * DAY),
        ("audit", NOW - 3 * DAY),
        ("audit", NOW - 2 * 3600),
        ("resize", NOW - 3 * DAY),
        ("resize", NOW - 2 * 3600),
    ]
    assert removed == {"invocations": 4}
    view = retention.to_json()
    assert view["functions"] == {"audit": 30 * DAY, "chatty": 3600.0}
    assert view["pruned"] == {"invocations": 4}
    assert view["last_run"] == NOW


async def test_only_the_leader_prunes_what_a_cluster_shares(store: SqlStore) -> None:
    await store.record_invocations([made_at(NOW - 30 * DAY, "resize")])
    leading = False
    shared_runs: list[str] = []

    async def prune_executions() -> int:
        shared_runs.append("ran")
        return 3

    retention = Retention(store, records_retention=DAY, leading=lambda: leading, clock=lambda: NOW)
    retention.add_pruner("executions", prune_executions)
    await retention.run()
    assert len(await kept(store)) == 1
    assert shared_runs == []

    leading = True
    assert await retention.run() == {"invocations": 1, "executions": 3}
    assert await kept(store) == []


async def test_environments_no_version_uses_are_removed(store: SqlStore, tmp_path: Path) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    builder = Builder(tmp_path / "envs")
    digest = "d" * 64
    code = artifacts.path(digest)
    code.mkdir(parents=True)
    (code / "requirements.txt").write_text("requests==2.32.3\n")
    requirements = builder.requirements(code)
    assert requirements is not None
    await deploy(store, "fetch", digest)
    root = builder.root
    used, unused, fresh = root / requirements.key, root / ("0" * 16), root / ("1" * 16)
    for env in (used, unused, fresh, root / "_runtime"):
        (env / "bin").mkdir(parents=True)
        (root / f"{env.name}.log").write_text("built\n")
    long_ago = time.time() - 2 * DAY
    for env in (used, unused, root / "_runtime"):
        os.utime(env, (long_ago, long_ago))

    retention = Retention(
        store, records_retention=DAY, builder=builder, artifacts=artifacts, build_grace=3600
    )
    assert await retention.run() == {"environments": 1}

    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(
        [used.name, fresh.name, "_runtime"]
    )
    assert not (root / f"{unused.name}.log").exists()


async def test_uploads_left_incomplete_for_a_day_are_aborted(
    store: SqlStore, tmp_path: Path
) -> None:
    buckets = BucketStore(tmp_path / "buckets", MemoryBus())
    await buckets.start()
    try:
        await buckets.create_bucket("photos")
        await buckets.create_upload("photos", "old.jpg", NewObject())
        clock = Clock(time.time() + DAY + 60)
        retention = Retention(store, records_retention=DAY, buckets=buckets, clock=clock)
        assert await retention.run() == {"uploads": 1}
        assert await buckets.list_uploads("photos") == []

        recent = await buckets.create_upload("photos", "new.jpg", NewObject())
        clock.now = time.time() + 3600
        assert await retention.run() == {}
        assert [u.id for u in await buckets.list_uploads("photos")] == [recent]
    finally:
        await buckets.stop()


async def test_housekeeping_runs_retention_and_counts_topic_events(store: SqlStore) -> None:
    await store.record_invocations([made_at(time.time() - 10 * DAY, "resize")])
    bus = MemoryBus()
    retention = Retention(store, records_retention=DAY)
    housekeeping = Housekeeping(bus, interval=0.01, retention=retention)
    await housekeeping.start()
    try:
        deadline = time.monotonic() + 5
        while retention.pruned.get("invocations") != 1:
            assert time.monotonic() < deadline, "retention did not prune the old record"
            await asyncio.sleep(0.01)
    finally:
        await housekeeping.stop()
    assert await kept(store) == []

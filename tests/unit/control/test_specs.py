"""Resolved specs: kept until a change clears them, and never kept when a change
cleared them while they were read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from triggerfish.control import Specs, VersionRecord
from triggerfish.functions import ArtifactStore, Deployer, FunctionConfig, pack_directory
from triggerfish.security.access_keys import AccessKeys
from triggerfish.store import SqlStore


def code(tmp_path: Path, answer: int) -> bytes:
    folder = tmp_path / f"code{answer}"
    folder.mkdir()
    (folder / "main.py").write_text(f"def handler(e, c):\n    return {answer}\n")
    return pack_directory(folder)


async def test_a_spec_read_while_a_change_clears_them_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store:
        deployer = Deployer(store, ArtifactStore(tmp_path / "artifacts"))
        keys = AccessKeys(store, tmp_path / "keys.key")
        await keys.start()
        specs = Specs(
            store, deployer, access_keys=keys, endpoint="http://127.0.0.1:1", region="us-east-1"
        )
        config = FunctionConfig.model_validate({"handler": "main.handler"})
        first = await deployer.deploy("greet", config, code(tmp_path, 1))
        second = await deployer.deploy("greet", config, code(tmp_path, 2))
        read, go_on = asyncio.Event(), asyncio.Event()
        plain_resolve = store.resolve_routing

        async def slow_resolve(
            function: str, qualifier: str = "live"
        ) -> tuple[VersionRecord, VersionRecord | None, float]:
            routing = await plain_resolve(function, qualifier)
            read.set()
            await go_on.wait()
            return routing

        monkeypatch.setattr(store, "resolve_routing", slow_resolve)
        reading = asyncio.create_task(specs.resolve("greet"))
        await read.wait()
        await store.set_alias("greet", "live", 1)  # the change ...
        specs.clear()  # ... and what follows every change
        go_on.set()
        assert (await reading).version == second.version  # read before the change
        monkeypatch.setattr(store, "resolve_routing", plain_resolve)

        assert (await specs.resolve("greet")).version == first.version

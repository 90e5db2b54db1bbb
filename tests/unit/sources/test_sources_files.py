"""The files source: a real folder watched with watchfiles, events on a real bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from triggerfish.bus.sqlite import SqliteBus
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import load_manifest
from triggerfish.sources.base import SourceContext
from triggerfish.sources.files import FilesKind
from triggerfish.store.sql import SqlStore

TOPIC = "_files.sync.files"


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    async with SqliteBus(tmp_path / "bus.db") as opened:
        await opened.create_topic(TOPIC)
        yield opened


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder.resolve()


def context(bus: SqliteBus, store: SqlStore, options: dict[str, Any]) -> SourceContext:
    return SourceContext(
        trigger_id="sync.files",
        function="sync",
        topic=TOPIC,
        options=options,
        config={"files": options},
        bus=bus,
        store=store,
        data_dir=Path(options["path"]).parent,
    )


async def changes_seen(bus: SqliteBus, count: int) -> list[tuple[str, str]]:
    """(type suffix, subject) of the first ``count`` events, waiting for them."""
    async with asyncio.timeout(20):
        while True:
            items = await bus.read(TOPIC, limit=100)
            if len(items) >= count:
                return [
                    (i.event.type.removeprefix("triggerfish.file."), i.event.subject or "")
                    for i in items
                ]
            await asyncio.sleep(0.05)


async def test_created_modified_and_deleted_files_become_events(
    bus: SqliteBus, store: SqlStore, inbox: Path
) -> None:
    kind = FilesKind(debounce_ms=100, idle_ms=50)
    source = kind.create(context(bus, store, {"path": str(inbox)}))
    await source.start()
    try:
        (inbox / "report.csv").write_text("a,b\n")
        assert await changes_seen(bus, 1) == [("created", "report.csv")]
        with (inbox / "report.csv").open("a") as handle:
            handle.write("1,2\n")
        assert (await changes_seen(bus, 2))[1] == ("modified", "report.csv")
        (inbox / "report.csv").unlink()
        assert (await changes_seen(bus, 3))[2] == ("deleted", "report.csv")
    finally:
        await source.stop()
    first = (await bus.read(TOPIC, limit=1))[0].event.to_dict()
    assert first["data"]["path"] == str(inbox / "report.csv")
    assert first["data"]["size"] == 4
    assert first["source"] == "triggerfish://files/sync.files"


async def test_glob_events_and_recursion_filter_changes(
    bus: SqliteBus, store: SqlStore, inbox: Path
) -> None:
    (inbox / "sub").mkdir()
    options = {"path": str(inbox), "glob": "*.csv", "events": ["created"], "recursive": False}
    source = FilesKind(debounce_ms=100, idle_ms=50).create(context(bus, store, options))
    await source.start()
    try:
        (inbox / "notes.txt").write_text("ignored: not *.csv")
        (inbox / "sub" / "deep.csv").write_text("ignored: in a sub-folder")
        (inbox / "data.csv").write_text("wanted")
        assert await changes_seen(bus, 1) == [("created", "data.csv")]
        (inbox / "data.csv").unlink()  # deletions are not wanted
        (inbox / "last.csv").write_text("wanted")
        assert await changes_seen(bus, 2) == [("created", "data.csv"), ("created", "last.csv")]
    finally:
        await source.stop()


def test_validate_wants_an_existing_absolute_folder(tmp_path: Path) -> None:
    kind = FilesKind()
    where = "functions.sync.triggers[0].files"
    with pytest.raises(ConfigError, match=r"files\.path: expected an absolute folder path"):
        kind.validate({"path": "inbox"}, where=where)
    with pytest.raises(ConfigError, match="does not exist on the server"):
        kind.validate({"path": str(tmp_path / "missing")}, where=where)
    kind.validate({"path": str(tmp_path)}, where=where)


def test_the_manifest_makes_the_folder_absolute(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "sync").mkdir(parents=True)
    (project / "sync" / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (project / "triggerfish.yaml").write_text(
        "functions:\n"
        "  sync:\n"
        "    handler: main.handler\n"
        "    triggers:\n"
        "      - files: {path: ./inbox, glob: '*.csv'}\n"
        "      - topic: other\n"
    )
    manifest = load_manifest(project)
    files, topic = manifest.functions["sync"].triggers
    assert files.files is not None
    assert files.files.path == str((project / "inbox").resolve())
    assert files.files.glob == "*.csv"
    assert topic.topic == "other"

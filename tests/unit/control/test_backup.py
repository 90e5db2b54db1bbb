"""Backups and restores of a data directory, in-process: what is copied, the manifest's
checksums, and the refusals that keep a person from losing data."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from pathlib import Path

import orjson
import pytest

from triggerfish.control.backup import Backups
from triggerfish.control.restore import restore
from triggerfish.errors import ConflictError, ValidationError

DIGEST = "ab" * 32


def make_data_dir(data: Path) -> None:
    data.mkdir()
    with sqlite3.connect(data / "store.db") as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE tf_functions (name TEXT)")
        conn.execute("INSERT INTO tf_functions VALUES ('echo')")
    with sqlite3.connect(data / "bus.db") as conn:
        conn.execute("CREATE TABLE topics (name TEXT)")
    (data / "buckets" / "blobs" / "aa").mkdir(parents=True)
    (data / "buckets" / "blobs" / "aa" / "aa01").write_bytes(b"object bytes")
    with sqlite3.connect(data / "buckets" / "index.db") as conn:
        conn.execute("CREATE TABLE objects (bucket TEXT, key TEXT, blob TEXT)")
        conn.execute("CREATE TABLE parts (blob TEXT)")
        conn.execute("CREATE TABLE buckets (name TEXT)")
        conn.execute("INSERT INTO objects VALUES ('b', 'k', 'aa/aa01')")
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("main.py", "def handler(event, context):\n    return 1\n")
    (data / "artifacts" / DIGEST).mkdir(parents=True)
    (data / "artifacts" / f"{DIGEST}.zip").write_bytes(packed.getvalue())
    (data / "access-keys.key").write_bytes(b"k" * 32)
    (data / "admin.token").write_text("tf_admin\n")
    (data / "envs").mkdir()  # rebuilt, not copied


def backups(data: Path, store: str = "", bus: str = "") -> Backups:
    return Backups(
        data,
        store_url=store or f"sqlite:///{data / 'store.db'}",
        bus_url=bus or f"sqlite:///{data / 'bus.db'}",
    )


async def test_a_backup_restores_to_the_same_data(tmp_path: Path) -> None:
    make_data_dir(tmp_path / "data")
    report = await backups(tmp_path / "data").run(tmp_path / "backup")
    assert {f.path for f in report.files} == {
        "store.db",
        "bus.db",
        "buckets/index.db",
        "buckets/blobs/aa/aa01",
        f"artifacts/{DIGEST}.zip",
        "access-keys.key",
        "admin.token",
    }
    manifest = orjson.loads((tmp_path / "backup" / "manifest.json").read_bytes())
    assert manifest["version"]
    assert len(manifest["files"]) == 7

    restored = restore(tmp_path / "backup", tmp_path / "new")
    new = tmp_path / "new"
    with sqlite3.connect(new / "store.db") as conn:
        assert conn.execute("SELECT name FROM tf_functions").fetchall() == [("echo",)]
    assert (new / "buckets" / "blobs" / "aa" / "aa01").read_bytes() == b"object bytes"
    assert (new / "artifacts" / DIGEST / "main.py").is_file()
    assert (new / "access-keys.key").read_bytes() == b"k" * 32
    assert (new / "admin.token").stat().st_mode & 0o077 == 0
    assert restored.counts["functions"] == 1
    assert restored.counts["objects"] == 1


async def test_a_backup_needs_an_absolute_empty_folder(tmp_path: Path) -> None:
    make_data_dir(tmp_path / "data")
    with pytest.raises(ValidationError, match="absolute"):
        await backups(tmp_path / "data").run(Path("relative/backup"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not an empty folder"):
        await backups(tmp_path / "data").run(tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


async def test_a_damaged_backup_is_refused_and_names_the_file(tmp_path: Path) -> None:
    make_data_dir(tmp_path / "data")
    await backups(tmp_path / "data").run(tmp_path / "backup")
    (tmp_path / "backup" / "bus.db").write_bytes(b"garbage")
    (tmp_path / "backup" / "admin.token").unlink()
    with pytest.raises(ValidationError, match=r"bus\.db differs.*admin\.token is missing"):
        restore(tmp_path / "backup", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_folder_without_a_manifest_is_no_backup(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"no manifest\.json"):
        restore(tmp_path, tmp_path / "new")


async def test_restore_keeps_a_non_empty_data_dir_unless_forced(tmp_path: Path) -> None:
    make_data_dir(tmp_path / "data")
    await backups(tmp_path / "data").run(tmp_path / "backup")
    target = tmp_path / "existing"
    target.mkdir()
    (target / "store.db").write_bytes(b"the old store")
    (target / "store.db-wal").write_bytes(b"old wal")
    with pytest.raises(ConflictError, match="--force"):
        restore(tmp_path / "backup", target)
    assert (target / "store.db").read_bytes() == b"the old store"

    restore(tmp_path / "backup", target, force=True)
    assert not (target / "store.db-wal").exists()
    with sqlite3.connect(target / "store.db") as conn:
        assert conn.execute("SELECT count(*) FROM tf_functions").fetchone() == (1,)


async def test_a_cluster_node_copies_its_files_and_says_what_it_left(tmp_path: Path) -> None:
    make_data_dir(tmp_path / "data")
    report = await backups(
        tmp_path / "data",
        store="postgresql://tf:pa55word@db.example:5432/tf",
        bus="nats://nats.example:4222",
    ).run(tmp_path / "backup")
    paths = {f.path for f in report.files}
    assert "store.db" not in paths
    assert "bus.db" not in paths
    assert "access-keys.key" in paths
    assert f"artifacts/{DIGEST}.zip" in paths
    notes = " ".join(report.not_copied)
    assert "pg_dump" in notes
    assert "nats stream backup" in notes
    assert "pa55word" not in notes  # the store URL's password stays out of the manifest


async def test_a_backup_that_cannot_be_written_says_why_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    make_data_dir(tmp_path / "data")
    # A blob that cannot be read as a file: its copy fails half way through.
    (tmp_path / "data" / "buckets" / "blobs" / "zz" / "zz01").mkdir(parents=True)
    with pytest.raises(ValidationError, match="cannot write the backup"):
        await backups(tmp_path / "data").run(tmp_path / "backup")
    assert not (tmp_path / "backup").exists()

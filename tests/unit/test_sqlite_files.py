"""``keeping_wal_index``: a WAL database closed cleanly keeps its ``-shm`` file, so it
opens again where no byte of disk is free; a wal-index in use is never replaced."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from triggerfish.sqlite_files import keeping_wal_index


def wal_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    conn.execute("INSERT INTO t VALUES ('kept')")
    return conn


def test_a_clean_close_keeps_the_wal_index_and_every_change(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    conn = wal_database(path)
    with keeping_wal_index(path):
        conn.close()
    assert Path(f"{path}-shm").stat().st_size > 0
    assert not Path(f"{path}-wal").exists()  # checkpointed into the file on close
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".keep")] == []
    again = sqlite3.connect(path, isolation_level=None)
    assert again.execute("SELECT x FROM t").fetchall() == [("kept",)]
    again.execute("INSERT INTO t VALUES ('more')")
    again.close()


def test_a_wal_index_still_in_use_stays_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    first, other = wal_database(path), sqlite3.connect(path)
    shm = Path(f"{path}-shm")
    inode = shm.stat().st_ino
    with keeping_wal_index(path):
        first.close()
    assert shm.stat().st_ino == inode
    assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
    other.close()
    assert not Path(f"{shm}.keep").exists()


def test_a_database_not_in_wal_mode_gets_no_wal_index(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    with keeping_wal_index(path):
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]

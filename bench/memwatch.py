"""Runs the Triggerfish CLI with a thread that writes down who holds the process's memory.

    TRIGGERFISH_MEMWATCH=/tmp/mem.json python -m bench.memwatch up --data-dir ...

Every ``TRIGGERFISH_MEMWATCH_EVERY`` seconds (default 5) the file named by
``TRIGGERFISH_MEMWATCH`` is replaced by one JSON object, in MB:

- ``py_arenas`` / ``py_used``: the arenas CPython's object allocator holds and the bytes of
  the blocks in use in them (their difference is fragmentation: arenas kept for a few
  live objects);
- ``malloc_used`` / ``malloc_free``: the C allocator's bytes in use (SQLite, uvloop, large
  Python objects, other native code) and the bytes it holds free in its heaps;
- ``sqlite``: what SQLite itself has allocated (page caches, statements), and in
  ``sqlite_files`` the same per database file: connections open, page caches, schemas,
  prepared statements (how many, and their bytes).

The soak benchmark uses it to tell a leak of objects from memory kept by an allocator.
Linux with glibc only; a figure that cannot be read is -1. ``_PyObject_DebugMallocStats``
is CPython's own debugging entry point, read here for a benchmark, never by the server.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sqlite3
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

MB = 1024 * 1024


# glibc's ``struct mallinfo2``, field by field.
_MALLINFO2 = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
              "fordblks", "keepcost")  # fmt: skip


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc


def _sqlite_used() -> float:
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return float(lib.sqlite3_memory_used()) / MB
    except (OSError, AttributeError):
        return -1.0


class _Tracked(sqlite3.Connection):
    """A connection as the caller asked for it, that a weak reference can name (the
    base type cannot), so tracking it does not keep it open."""


_CONNECTIONS: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()


def _track_connections() -> None:
    connect = sqlite3.connect

    def tracked(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("factory", _Tracked)
        made: sqlite3.Connection = connect(*args, **kwargs)
        if isinstance(made, _Tracked):
            _CONNECTIONS.add(made)
        return made

    sqlite3.connect = tracked  # type: ignore[assignment]


_CACHE_USED, _SCHEMA_USED, _STMT_USED = 1, 2, 3  # SQLITE_DBSTATUS_*
_STMT_MEMUSED = 99  # SQLITE_STMTSTATUS_MEMUSED


def _sqlite_files() -> dict[str, dict[str, float]]:
    """SQLite's memory per database file, summed over this process's open connections.

    The connections are those ``sqlite3.connect`` made since ``main`` wrapped it (the
    node freezes its objects with ``gc.freeze``, which hides them from ``gc``). The
    connection's ``sqlite3 *`` is the first field after the object header of
    CPython's ``pysqlite_Connection``; the calls hold the GIL (``PyDLL``), so no other
    thread closes a connection while it is read.
    """
    try:
        lib = ctypes.PyDLL("libsqlite3.so.0")
    except OSError:
        return {}
    lib.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int,
        ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.c_int]  # fmt: skip
    lib.sqlite3_db_filename.restype = ctypes.c_char_p
    lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.sqlite3_next_stmt.restype = ctypes.c_void_p
    lib.sqlite3_next_stmt.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.sqlite3_stmt_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.sqlite3_sql.restype = ctypes.c_char_p
    lib.sqlite3_sql.argtypes = [ctypes.c_void_p]
    texts: dict[str, dict[str, int]] = {}
    header = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)
    files: dict[str, dict[str, float]] = {}
    for obj in list(_CONNECTIONS):
        db = ctypes.c_void_p.from_address(id(obj) + header).value
        if not db:
            continue  # closed
        name = Path((lib.sqlite3_db_filename(db, b"main") or b":memory:").decode()).name
        entry = files.setdefault(name or ":memory:",
            {"connections": 0, "cache": 0.0, "schema": 0.0, "stmt": 0.0, "stmts": 0})  # fmt: skip
        entry["connections"] += 1
        current, highest = ctypes.c_int(), ctypes.c_int()
        for op, key in ((_CACHE_USED, "cache"), (_SCHEMA_USED, "schema"), (_STMT_USED, "stmt")):
            lib.sqlite3_db_status(db, op, ctypes.byref(current), ctypes.byref(highest), 0)
            entry[key] += current.value / MB
        stmt = lib.sqlite3_next_stmt(db, None)
        while stmt:
            entry["stmts"] += 1
            text = (lib.sqlite3_sql(stmt) or b"").decode(errors="replace")[:60]
            held = texts.setdefault(name, {})
            held[text] = held.get(text, 0) + lib.sqlite3_stmt_status(stmt, _STMT_MEMUSED, 0)
            stmt = lib.sqlite3_next_stmt(db, stmt)
    out: dict[str, dict[str, Any]] = {
        name: {k: round(v, 2) for k, v in e.items()} for name, e in files.items()
    }
    for name, held in texts.items():
        # The statements holding most, by the first 60 characters of their SQL.
        top = sorted(held.items(), key=lambda item: -item[1])[:3]
        out[name]["top_stmts"] = {text: round(size / MB, 2) for text, size in top}
    return out


def _py_arenas(libc: ctypes.CDLL) -> tuple[float, float]:
    """(arenas held, bytes in allocated blocks) of CPython's object allocator, in MB."""
    stats = ctypes.pythonapi._PyObject_DebugMallocStats
    stats.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        handle = libc.fopen(out.name.encode(), b"w")
        if not handle:
            return -1.0, -1.0
        try:
            stats(handle)
        finally:
            libc.fclose(handle)
        text = Path(out.name).read_text()
    arenas = re.search(r"(\d+) arenas \* (\d+) bytes/arena", text)
    used = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    if not arenas or not used:
        return -1.0, -1.0
    held = int(arenas.group(1)) * int(arenas.group(2))
    return held / MB, int(used.group(1).replace(",", "")) / MB


def snapshot() -> dict[str, Any]:
    libc = _libc()
    if libc is None:
        return {"py_arenas": -1, "py_used": -1, "malloc_used": -1, "malloc_free": -1,
                "sqlite": _sqlite_used()}  # fmt: skip
    info = libc.mallinfo2()
    py_arenas, py_used = _py_arenas(libc)
    return {
        "py_arenas": round(py_arenas, 1),
        "py_used": round(py_used, 1),
        "malloc_used": round((info.uordblks + info.hblkhd) / MB, 1),
        "malloc_free": round(info.fordblks / MB, 1),
        "sqlite": round(_sqlite_used(), 1),
        "sqlite_files": _sqlite_files(),
    }


def _watch(path: Path, every: float) -> None:
    while True:
        spare = path.with_suffix(".tmp")
        spare.write_text(json.dumps(snapshot()))
        spare.replace(path)
        time.sleep(every)


def read(path: Path) -> dict[str, Any]:
    """The latest snapshot a watched process wrote, or ``{}`` before its first."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def main() -> None:
    target = os.environ.get("TRIGGERFISH_MEMWATCH")
    if target:
        _track_connections()
        every = float(os.environ.get("TRIGGERFISH_MEMWATCH_EVERY", "5"))
        threading.Thread(target=_watch, args=(Path(target), every), daemon=True).start()
    from triggerfish.cli.main import main as cli

    cli()


if __name__ == "__main__":
    main()

"""Code packages: deterministic zips, digests, safe unpacking, and stored artifacts."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from triggerfish.errors import BuildError
from triggerfish.functions import (
    ArtifactStore,
    FunctionConfig,
    code_digest,
    pack_directory,
    unpack,
    version_digest,
    version_id,
)

CONFIG = FunctionConfig(handler="main.handler")


def make_code(folder: Path) -> Path:
    files = {
        "main.py": "def handler(event, context):\n    return 1\n",
        "lib/util.py": "X = 1\n",
        "lib/__pycache__/util.cpython-311.pyc": "junk",
        "stale.pyc": "junk",
        ".git/HEAD": "ref",
        ".venv/bin/python": "",
        "node_modules/x/index.js": "",
        "data/settings.json": "{}",
    }
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    run = folder / "run.sh"
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)
    return folder


def names(zip_bytes: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(zip_bytes)).namelist()


def zip_of(entries: dict[str, bytes], *, mode: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def test_packing_keeps_code_and_leaves_out_caches_and_tool_folders(tmp_path: Path) -> None:
    packed = pack_directory(make_code(tmp_path / "code"))

    assert names(packed) == ["data/settings.json", "lib/util.py", "main.py", "run.sh"]


def test_packing_twice_gives_the_same_bytes_even_after_touching_files(tmp_path: Path) -> None:
    code = make_code(tmp_path / "code")
    first = pack_directory(code)
    os.utime(code / "main.py", (1_000_000_000, 1_000_000_000))
    copy = make_code(tmp_path / "copy")

    assert pack_directory(code) == first
    assert pack_directory(copy) == first


def test_changing_one_byte_changes_the_package_and_the_digest(tmp_path: Path) -> None:
    code = make_code(tmp_path / "code")
    before = pack_directory(code)
    (code / "lib" / "util.py").write_text("X = 2\n")
    after = pack_directory(code)

    assert before != after
    assert version_digest(before, CONFIG) != version_digest(after, CONFIG)


def test_packing_a_missing_folder_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a folder"):
        pack_directory(tmp_path / "nope")


def test_unpacking_restores_files_and_the_executable_bit(tmp_path: Path) -> None:
    packed = pack_directory(make_code(tmp_path / "code"))

    unpack(packed, tmp_path / "out")

    assert (tmp_path / "out" / "lib" / "util.py").read_text() == "X = 1\n"
    assert (tmp_path / "out" / "run.sh").stat().st_mode & stat.S_IXUSR
    assert not (tmp_path / "out" / "main.py").stat().st_mode & stat.S_IXUSR
    assert not (tmp_path / "out" / ".git").exists()


def test_the_digest_covers_files_not_zip_bytes(tmp_path: Path) -> None:
    """A zip of the same files made by another tool is the same version."""
    ours = pack_directory(make_code(tmp_path / "code"))
    entries = {name: zipfile.ZipFile(io.BytesIO(ours)).read(name) for name in reversed(names(ours))}
    theirs = io.BytesIO()
    with zipfile.ZipFile(theirs, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 5, 5, 1, 2, 3))
            info.external_attr = (0o755 if name == "run.sh" else 0o600) << 16
            zf.writestr(info, data)

    assert theirs.getvalue() != ours
    assert code_digest(theirs.getvalue()) == code_digest(ours)
    assert version_digest(theirs.getvalue(), CONFIG) == version_digest(ours, CONFIG)


def test_the_digest_covers_runtime_settings_but_not_triggers(tmp_path: Path) -> None:
    packed = pack_directory(make_code(tmp_path / "code"))
    base = version_digest(packed, CONFIG)
    with_trigger = FunctionConfig.model_validate(
        {"handler": "main.handler", "code": "./elsewhere", "triggers": [{"topic": "orders"}]}
    )
    more_memory = FunctionConfig(handler="main.handler", memory=512)
    other_env = FunctionConfig(handler="main.handler", environment={"STAGE": "prod"})

    assert version_digest(packed, with_trigger) == base
    assert version_digest(packed, more_memory) != base
    assert version_digest(packed, other_env) != base
    assert len(base) == 64
    assert version_id(base) == base[:12]


@pytest.mark.parametrize(
    "name", ["../evil.py", "/etc/passwd", "a/../../evil.py", "C:/x.py", "a\\..\\b.py"]
)
def test_unsafe_paths_are_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    bad = zip_of({"ok.py": b"1", name: b"boom"})

    with pytest.raises(BuildError, match="unsafe path in code package"):
        unpack(bad, tmp_path / "out")
    with pytest.raises(BuildError):
        code_digest(bad)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.py").exists()


def test_symbolic_links_are_refused(tmp_path: Path) -> None:
    bad = zip_of({"link": b"/etc/passwd"}, mode=stat.S_IFLNK | 0o777)

    with pytest.raises(BuildError, match="symbolic link"):
        unpack(bad, tmp_path / "out")


def test_an_archive_that_unpacks_too_large_is_refused(tmp_path: Path) -> None:
    bomb = zip_of({"big.bin": b"\0" * 10_000})

    with pytest.raises(BuildError, match="over the 1000 limit"):
        unpack(bomb, tmp_path / "out", max_size=1000)


def test_bytes_that_are_not_a_zip_are_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a valid zip"):
        unpack(b"hello", tmp_path / "out")
    with pytest.raises(BuildError, match="not a valid zip"):
        version_digest(b"hello", CONFIG)


def test_artifacts_are_stored_by_digest_once(tmp_path: Path) -> None:
    packed = pack_directory(make_code(tmp_path / "code"))
    digest = version_digest(packed, CONFIG)
    store = ArtifactStore(tmp_path / "artifacts")

    assert not store.has(digest)
    path = store.put(digest, packed)
    (path / "main.py").write_text("changed by hand")
    again = store.put(digest, packed)

    assert again == path == store.path(digest)
    assert store.has(digest)
    assert (path / "main.py").read_text() == "changed by hand"  # the second put kept the first
    assert store.read_zip(digest) == packed
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == [digest, f"{digest}.zip"]


def test_concurrent_puts_of_one_digest_leave_one_complete_folder(tmp_path: Path) -> None:
    packed = pack_directory(make_code(tmp_path / "code"))
    digest = version_digest(packed, CONFIG)
    store = ArtifactStore(tmp_path / "artifacts")

    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: store.put(digest, packed), range(8)))

    assert set(paths) == {store.path(digest)}
    assert (store.path(digest) / "lib" / "util.py").read_text() == "X = 1\n"
    assert not [p for p in (tmp_path / "artifacts").iterdir() if p.name.startswith(".")]


def test_a_failed_put_leaves_nothing_behind(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    digest = "a" * 64

    with pytest.raises(BuildError):
        store.put(digest, zip_of({"../x": b"1"}))

    assert not store.has(digest)
    assert list((tmp_path / "artifacts").iterdir()) == []


def test_stored_code_is_compiled_so_a_first_import_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    (folder / "lib").mkdir(parents=True)
    (folder / "main.py").write_text(
        "import lib.helpers\n\ndef handler(event, context):\n    return 1\n"
    )
    (folder / "lib" / "__init__.py").write_text("")
    (folder / "lib" / "helpers.py").write_text("VALUE = 2\n")
    package = pack_directory(folder)
    code = ArtifactStore(tmp_path / "artifacts").put(code_digest(package), package)
    before = sorted(p.relative_to(code) for p in code.rglob("*"))
    assert any(p.suffix == ".pyc" and p.parent.name == "__pycache__" for p in code.rglob("*"))
    subprocess.run(
        [sys.executable, "-c", "import main, lib.helpers; assert lib.helpers.VALUE == 2"],
        cwd=code,
        check=True,
    )
    assert sorted(p.relative_to(code) for p in code.rglob("*")) == before


def test_code_that_does_not_compile_is_still_stored(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.py").write_text("def handler(event, context)\n    return 1\n")
    package = pack_directory(folder)
    code = ArtifactStore(tmp_path / "artifacts").put(code_digest(package), package)
    assert (code / "main.py").read_text().startswith("def handler(event, context)")
    assert not list(code.rglob("*.pyc"))

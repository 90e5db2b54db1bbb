"""Code packages: deterministic zips of a function's folder, safe unpacking, digests.

``pack_directory`` gives the same bytes for the same files wherever it runs on one
machine: entries sorted, timestamps fixed, modes reduced to "executable or not", and
caches and version-control folders left out. ``version_digest`` does not hash the zip
bytes but the files it holds (name, executable bit, content) together with the
canonical JSON of the settings a version keeps, so a zip built by another tool (or
another zlib) of the same files yields the same version. A version id is the first 12
hex characters of the digest.

``pack_function`` adds a function's layers (``layers:`` in the manifest) to its package,
their files merged in order (a later layer's file replaces an earlier one's) under
``OPT_DIR``: a layer is part of each version deployed with it, so changing its folder
later changes no deployed version. The runtime makes that folder what Lambda makes
``/opt`` (``runtime.environment``).

``unpack`` refuses entries that would land outside the destination (absolute paths,
``..``, symbolic links) and archives larger than ``max_size`` once unpacked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from triggerfish.errors import BuildError
from triggerfish.functions.manifest import FunctionConfig
from triggerfish.runtime.base import OPT_DIR

EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".venv",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".triggerfish",  # the default data folder of a node started in the project
        OPT_DIR,
    }
)
#: Left out of a layer: a layer's ``nodejs/node_modules`` is its very content.
LAYER_EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
VERSION_ID_LENGTH = 12
DEFAULT_MAX_SIZE = 1 << 30  # 1 GiB unpacked

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644
_EXEC_MODE = 0o755


def pack_directory(path: Path) -> bytes:
    """Zip the files under ``path`` deterministically; BuildError if it is not a folder."""
    return pack_function(path)


def pack_function(path: Path, layers: Sequence[Path] = ()) -> bytes:
    """Zip the code folder ``path`` and, under ``OPT_DIR``, the files of ``layers``
    merged in order; BuildError if one is not a folder."""
    root = Path(path)
    if not root.is_dir():
        raise BuildError(f"cannot package {root}: not a folder")
    entries = list(_walk(root))
    merged: dict[str, Path] = {}
    for layer in layers:
        if not Path(layer).is_dir():
            raise BuildError(f"cannot package the layer {layer}: not a folder")
        for relative, file in _walk(Path(layer), LAYER_EXCLUDED_DIRS):
            merged[f"{OPT_DIR}/{relative}"] = file
    entries.extend(sorted(merged.items()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for relative, file in entries:
            info = zipfile.ZipInfo(relative, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the mode everywhere
            mode = _EXEC_MODE if os.access(file, os.X_OK) else _FILE_MODE
            info.external_attr = (stat.S_IFREG | mode) << 16
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise BuildError(f"cannot package {file}: {exc}") from exc
            zf.writestr(info, data)
    return buffer.getvalue()


def _walk(root: Path, excluded: frozenset[str] = EXCLUDED_DIRS) -> Iterator[tuple[str, Path]]:
    """Regular files under ``root`` (following file links), as sorted POSIX paths."""
    stack: list[tuple[str, Path]] = [("", root)]
    found: list[tuple[str, Path]] = []
    while stack:
        prefix, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise BuildError(f"cannot package {folder}: {exc}") from exc
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in excluded:
                    stack.append((relative + "/", Path(entry.path)))
            elif entry.is_file() and not entry.name.endswith(EXCLUDED_SUFFIXES):
                found.append((relative, Path(entry.path)))
    yield from sorted(found)


def unpack(zip_bytes: bytes, dest: Path, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
    """Extract a code package into ``dest`` (created if missing), refusing unsafe entries."""
    with _open(zip_bytes) as zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            _check_entry(info)
            total += info.file_size
        if total > max_size:
            raise BuildError(f"code package unpacks to {total} bytes, over the {max_size} limit")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for info in infos:
            target = dest.joinpath(*PurePosixPath(info.filename).parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as source, target.open("wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise BuildError(f"cannot unpack {info.filename!r}: {exc}") from exc
            target.chmod(_EXEC_MODE if _is_executable(info) else _FILE_MODE)


def _open(zip_bytes: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile as exc:
        raise BuildError(f"the code package is not a valid zip file: {exc}") from exc


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or ".." in path.parts
        or (path.parts and ":" in path.parts[0])
    ):
        raise BuildError(f"unsafe path in code package: {name!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BuildError(f"symbolic link in code package: {name!r}")


def _is_executable(info: zipfile.ZipInfo) -> bool:
    return bool((info.external_attr >> 16) & 0o111)


def code_digest(zip_bytes: bytes) -> str:
    """SHA-256 of the files in a code package: names, executable bits and contents."""
    digest = hashlib.sha256()
    with _open(zip_bytes) as zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
        for info in infos:
            _check_entry(info)
            name = info.filename.encode()
            digest.update(len(name).to_bytes(4, "big") + name)
            digest.update(b"x" if _is_executable(info) else b"-")
            digest.update(info.file_size.to_bytes(8, "big"))
            try:
                with zf.open(info) as source:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise BuildError(f"cannot read {info.filename!r}: {exc}") from exc
    return digest.hexdigest()


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def version_digest(zip_bytes: bytes, config: FunctionConfig) -> str:
    """SHA-256 hex of the code and the version's settings (not its triggers)."""
    digest = hashlib.sha256(b"triggerfish-version-1\n")
    digest.update(code_digest(zip_bytes).encode() + b"\n")
    digest.update(canonical_json(config.version_config()))
    return digest.hexdigest()


def version_id(digest: str) -> str:
    """The short id of the version whose digest is ``digest``."""
    return digest[:VERSION_ID_LENGTH]

"""``triggerfish backup`` and ``triggerfish restore``.

``backup PATH`` asks the running server for a consistent copy of its node (``POST
/v1/backup``, admin scope): PATH is a folder on the server's machine, made absolute
here against the current folder. ``restore PATH --data-dir DIR`` works on this machine
alone, with no server: it checks the backup's checksums and lays it out as a data
directory that ``triggerfish up --data-dir DIR`` starts from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, errors, print_json, table
from triggerfish.config import load_settings
from triggerfish.errors import ConflictError

BACKUP_TIMEOUT = 3600.0  # seconds: a large node takes a while to copy


def backup(
    path: Annotated[Path, typer.Argument(help="an absent or empty folder on the server's machine")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy the running node (databases, code, buckets, keys) into PATH, without stopping it."""
    with Client(load_settings({"data_dir": data_dir}), timeout=BACKUP_TIMEOUT) as api:
        body = api.json("POST", "/v1/backup", json={"path": str(path.absolute())})
    if as_json:
        print_json(body)
        return
    parts: dict[str, list[int]] = {}
    for entry in body["files"]:
        part = entry["path"].split("/")[0] if "/" in entry["path"] else entry["path"]
        parts.setdefault(part, []).append(entry["size"])
    table(
        f"backup in {body['path']}",
        ["part", "files", "size"],
        ((part, len(sizes), _size(sum(sizes))) for part, sizes in sorted(parts.items())),
    )
    console.print(
        f"{len(body['files'])} file(s), {_size(body['size'])}, in {body['seconds']:.1f} s "
        f"(Triggerfish {body['version']}); checksums in {body['path']}/manifest.json",
        markup=False,
        soft_wrap=True,
    )
    for note in body["not_copied"]:
        errors.print(f"not copied: {note}", markup=False, soft_wrap=True)


def restore(
    path: Annotated[Path, typer.Argument(help="a folder written by `triggerfish backup`")],
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="the data directory to make (absent or empty)"),
    ],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace what the backup holds in a non-empty DIR."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a backup's checksums and make a data directory a node starts from."""
    try:
        # The store's modules load only for this command.
        from triggerfish.control.restore import restore as restore_backup

        report = restore_backup(path, data_dir, force=force)
    except ConflictError as exc:
        raise CliError(str(exc), 7) from None
    if as_json:
        print_json(
            {
                "data_dir": report.data_dir,
                "version": report.version,
                "created_at": report.created_at,
                "files": report.files,
                "size": report.size,
                "counts": report.counts,
                "not_copied": report.not_copied,
            }
        )
        return
    console.print(
        f"restored {report.files} file(s), {_size(report.size)}, from a backup by "
        f"Triggerfish {report.version} into {report.data_dir}",
        markup=False,
        soft_wrap=True,
    )
    table(None, ["what", "count"], sorted(report.counts.items()))
    for note in report.not_copied:
        errors.print(f"not in the backup: {note}", markup=False, soft_wrap=True)
    console.print(f"start it with: triggerfish up --data-dir {report.data_dir}", markup=False)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"

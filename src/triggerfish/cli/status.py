"""``triggerfish status``: the server's node, uptime, disk use per part and what
retention removes."""

from __future__ import annotations

from typing import Any

from triggerfish.cli.client import Client
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

_UNITS = ("B", "KB", "MB", "GB", "TB")


def status(
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the server's node: uptime, the disk its bus, store, buckets, artifacts and
    environments use, the free space left, and what retention removed since start."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("GET", "/v1/status")
    if as_json:
        print_json(body)
        return
    console.print(
        f"node {body['node']}  version {body['version']}  "
        f"up {uptime(body['uptime'])} (since {when(body['started_at'])})"
    )
    disk = body["disk"]
    rows = [
        (part["name"], part["where"], size(part["bytes"]) if part["bytes"] is not None else "-")
        for part in disk["parts"]
    ]
    table("disk", ["part", "kept in", "size"], rows)
    if disk.get("free_bytes") is not None:
        console.print(
            f"free on the data directory's filesystem: {size(disk['free_bytes'])}"
            f" of {size(disk['total_bytes'])}"
        )
    _print_retention(body.get("retention"))


def _print_retention(retention: dict[str, Any] | None) -> None:
    if retention is None:
        return
    console.print(f"records retention: {uptime(retention['records_retention'])}")
    for function, seconds in retention["functions"].items():
        console.print(f"  {function}: {uptime(seconds)}")
    last = retention["last_run"]
    console.print(f"last retention pass: {when(last) if last is not None else 'not yet'}")
    if retention.get("last_error"):
        console.print(f"  failed: {retention['last_error']}")
    pruned = retention["pruned"]
    if pruned:
        table("removed since start", ["kind", "count"], sorted(pruned.items()))
    else:
        console.print("removed since start: nothing")


def size(count: float) -> str:
    """``count`` bytes in the largest unit that keeps it at 1 or more."""
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.0f} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def uptime(seconds: float) -> str:
    """``seconds`` as days, hours, minutes and seconds, the two largest that apply."""
    left = int(seconds)
    parts: list[str] = []
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= length or (unit == "s" and not parts):
            parts.append(f"{left // length}{unit}")
            left %= length
    return " ".join(parts[:2])

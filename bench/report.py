"""The core suite's figures side by side: a Rich table and a JSON document.

``combine`` folds repeated runs of one workload into one ``Result`` (the median of each
figure over the runs that succeeded). ``render`` draws one row per figure with one
column per system and the ratio Triggerfish / peer, green where Triggerfish is better.
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.workload import Plan, Result, Workload

SYSTEMS = ("triggerfish", "celery", "dramatiq")
PEERS = ("celery", "dramatiq")

#: system -> workload -> runs
Runs = dict[str, dict[Workload, list[Result]]]


@dataclass(frozen=True, slots=True)
class Row:
    workload: Workload
    figure: str
    label: str
    higher_is_better: bool


ROWS = (
    Row("throughput", "events_per_s", "throughput, events/s", True),
    Row("throughput", "events_per_s_with_start", "  incl. consumer start", True),
    Row("throughput", "ordered_events_per_s", "  ordered, 100 keys, events/s", True),
    Row("latency", "p50_ms", "latency p50, ms", False),
    Row("latency", "p99_ms", "latency p99, ms", False),
    Row("sync", "requests_per_s", "sync, requests/s", True),
    Row("sync", "p50_ms", "sync p50, ms", False),
    Row("sync", "p99_ms", "sync p99, ms", False),
)


def combine(runs: list[Result]) -> Result:
    ok = [r for r in runs if r.status == "ok"]
    if not ok:
        return runs[0]
    names = ok[0].figures.keys()
    return Result.ok(**{name: statistics.median(r.figures[name] for r in ok) for name in names})


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(runs: Runs, console: Console) -> None:
    systems = [s for s in SYSTEMS if s in runs]
    combined = {s: {w: combine(r) for w, r in runs[s].items()} for s in systems}
    table = Table(
        title="Triggerfish core benchmark (median of runs)",
        caption="TF/peer: Triggerfish's figure divided by the peer's; green where Triggerfish"
        " is better",
    )
    table.add_column("figure")
    for system in systems:
        table.add_column(system, justify="right")
    ratio_peers = [p for p in PEERS if p in systems] if "triggerfish" in systems else []
    for peer in ratio_peers:
        table.add_column(f"TF/{peer}", justify="right")
    for row in ROWS:
        cells = [row.label]
        values: dict[str, float | None] = {}
        for system in systems:
            result = combined[system].get(row.workload)
            value = result.figures.get(row.figure) if result and result.status == "ok" else None
            values[system] = value
            cells.append(fmt(value) if value is not None else cell_status(result))
        for peer in ratio_peers:
            cells.append(ratio_cell(values["triggerfish"], values[peer], row.higher_is_better))
        table.add_row(*cells)
    console.print(table)
    for system in systems:
        for workload, result in combined[system].items():
            if result.status != "ok":
                console.print(f"[bold]{system} {workload}[/bold] {result.status}: {result.reason}")


def cell_status(result: Result | None) -> str:
    """A cell without a figure: "-" where the system does not measure it (the peers have
    no ordered variant), else why its run gave none."""
    if result is None or result.status == "ok":
        return "-"
    return "n/a" if result.status == "n/a" else "[red]error[/red]"


def ratio_cell(ours: float | None, theirs: float | None, higher_is_better: bool) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "-"
    ratio = ours / theirs
    better = ratio > 1 if higher_is_better else ratio < 1
    colour = "green" if better else "red"
    return f"[{colour}]{ratio:.2f}x[/{colour}]"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def to_json(runs: Runs, plan: Plan, *, repeat: int, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Other work on the machine shows here; compare runs with similar loads.
            "loadavg_at_end": list(os.getloadavg()),
        },
        "versions": {p: version(p) for p in ("triggerfish", "celery", "dramatiq", "redis")},
        "plan": asdict(plan),
        "repeat": repeat,
        "settings": settings,
        "results": {
            system: {
                workload: {
                    **combine(results).to_dict(),
                    "runs": [r.to_dict() for r in results],
                }
                for workload, results in by_workload.items()
            }
            for system, by_workload in runs.items()
        },
    }

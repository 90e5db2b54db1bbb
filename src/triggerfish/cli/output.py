"""Output for people (Rich tables) and for scripts (``--json``).

Times are shown as ISO 8601 in local time with the offset. A table fits the terminal,
shortening long cells with an ellipsis; with ``--wide``, or when the output is not a
terminal (a pipe, a file), nothing is shortened or folded, so ids can be copied whole.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from triggerfish.cli.root import selection

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def full_width() -> bool:
    """Whether tables are printed whole: ``--wide`` was given, or nobody is reading them
    on a terminal."""
    return selection.wide or not console.is_terminal


def _keeps_whole(column: str) -> bool:
    # Ids are what people copy into the next command: other columns give way first.
    return column in ("id", "version", "node") or column.endswith(" id")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column, no_wrap=_keeps_whole(column))
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    if not full_width():
        console.print(out)
        return
    natural = Measurement.get(console, console.options.update_width(1_000_000), out).maximum
    whole = Console(
        file=console.file,
        highlight=False,
        width=max(natural, 20),
        force_terminal=console.is_terminal,
    )
    whole.print(out)


def when(stamp: float | str | None) -> str:
    """A moment for people: ISO 8601 in local time, with the offset."""
    if not stamp:
        return ""
    if isinstance(stamp, str):
        return stamp  # already a time a person can read (an event's own ``time``)
    local = datetime.fromtimestamp(stamp).astimezone()
    return local.isoformat(timespec="milliseconds")


def duration(ms: float | None) -> str:
    return "" if ms is None else f"{ms:.2f} ms"

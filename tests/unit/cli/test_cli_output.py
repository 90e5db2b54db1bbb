"""What people read: times as ISO 8601 with the offset, ids whole when they are copied."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from triggerfish.cli import output
from triggerfish.cli.main import internal_topic
from triggerfish.cli.root import selection

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
LONG_ID = "inv_" + "0123456789abcdef" * 5


def test_times_are_iso_8601_in_local_time_with_the_offset() -> None:
    stamp = 1_796_641_510.123
    shown = output.when(stamp)
    assert ISO.match(shown), shown
    assert datetime.fromisoformat(shown).timestamp() == pytest.approx(stamp, abs=0.001)
    assert output.when(None) == ""
    assert output.when("2026-12-07T11:05:10Z") == "2026-12-07T11:05:10Z"


def rows() -> list[tuple[str, str, str]]:
    return [(LONG_ID, "resize", "ValueError: " + "a long explanation " * 8)]


def test_a_table_that_is_not_read_on_a_terminal_keeps_every_cell_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, width=40, highlight=False))
    output.table("invocations", ["id", "function", "error"], rows())
    text = out.getvalue()
    assert LONG_ID in text
    assert "a long explanation " * 8 in text
    assert "…" not in text


def test_a_narrow_terminal_shortens_ids_unless_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    terminal = Console(file=out, width=60, force_terminal=True, color_system=None)
    monkeypatch.setattr(output, "console", terminal)
    monkeypatch.setattr(selection, "wide", False)
    output.table(None, ["id", "function", "error"], rows())
    assert LONG_ID not in out.getvalue()
    assert max(len(line) for line in out.getvalue().splitlines()) <= 60
    out.seek(0)
    out.truncate()
    monkeypatch.setattr(selection, "wide", True)
    output.table(None, ["id", "function", "error"], rows())
    assert LONG_ID in out.getvalue()


@pytest.mark.parametrize(
    ("name", "internal"),
    [
        ("_invoke.resize", True),
        ("_redrive.resize.orders", True),
        ("resize._async.dlq", True),
        ("orders", False),
        ("resize.orders.dlq", False),
        ("async.dlq", False),
    ],
)
def test_triggerfish_own_topics_are_internal(name: str, internal: bool) -> None:
    assert internal_topic(name) is internal


def test_an_error_with_a_long_path_is_one_line_in_a_pipe(tmp_path: Path) -> None:
    missing = tmp_path / ("deep-" * 20) / "triggerfish.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "triggerfish", "deploy", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert done.returncode != 0
    assert done.stderr == f"error: {missing}: no such file\n"

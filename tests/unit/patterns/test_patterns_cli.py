"""`triggerfish pattern test`: match, no match, or the validation error, with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from triggerfish.cli.pattern import app

runner = CliRunner()
PATTERN = '{"data": {"total": [{"numeric": [">", 100]}]}}'


def test_match_exits_zero() -> None:
    result = runner.invoke(app, ["test", PATTERN, '{"data": {"total": 150}}'])
    assert result.exit_code == 0
    assert result.output.strip() == "match"


def test_no_match_exits_one() -> None:
    result = runner.invoke(app, ["test", PATTERN, '{"data": {"total": 50}}'])
    assert result.exit_code == 1
    assert result.output.strip() == "no match"


def test_files_are_read_with_at(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(PATTERN)
    (tmp_path / "e.json").write_text('{"data": {"total": 101}}')
    result = runner.invoke(app, ["test", f"@{tmp_path / 'p.json'}", f"@{tmp_path / 'e.json'}"])
    assert result.exit_code == 0
    missing = runner.invoke(app, ["test", f"@{tmp_path / 'nope.json'}", "{}"])
    assert missing.exit_code == 2
    assert "cannot read the pattern file" in missing.output


def test_invalid_pattern_exits_two_with_the_path() -> None:
    result = runner.invoke(app, ["test", '{"detail": {"n": [{"numeric": 10}]}}', "{}"])
    assert result.exit_code == 2
    assert "invalid pattern" in result.output
    assert "detail.n" in result.output


def test_invalid_event_exits_two() -> None:
    assert runner.invoke(app, ["test", PATTERN, "not json"]).exit_code == 2
    assert runner.invoke(app, ["test", PATTERN, "[1]"]).exit_code == 2


def test_json_output() -> None:
    yes = runner.invoke(app, ["test", "--json", PATTERN, '{"data": {"total": 150}}'])
    assert yes.exit_code == 0
    assert json.loads(yes.output) == {"valid": True, "match": True}
    bad = runner.invoke(app, ["test", "--json", '{"a": 1}', "{}"])
    assert bad.exit_code == 2
    report = json.loads(bad.output)
    assert report["valid"] is False
    assert report["field"] == "a"
    assert "must be an object or an array" in report["error"]

"""``records_retention``: a duration for the node (triggerfish.toml, the environment)
and for a function (its manifest), with clear errors for what is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.config import load_settings
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import parse_manifest


def test_the_node_keeps_records_seven_days_unless_told(tmp_path: Path) -> None:
    assert load_settings(environ={}, cwd=tmp_path).records_retention == 7 * 86400
    (tmp_path / "triggerfish.toml").write_text('records_retention = "36h"\n')
    assert load_settings(environ={}, cwd=tmp_path).records_retention == 36 * 3600
    env = {"TRIGGERFISH_RECORDS_RETENTION": "2w"}
    assert load_settings(environ=env, cwd=tmp_path).records_retention == 14 * 86400
    env = {"TRIGGERFISH_RECORDS_RETENTION": "600"}
    assert load_settings(environ=env, cwd=tmp_path).records_retention == 600


@pytest.mark.parametrize("bad", ["forever", "0", "-1d", "7 days", ""])
def test_a_retention_that_is_no_duration_is_refused(tmp_path: Path, bad: str) -> None:
    env = {"TRIGGERFISH_RECORDS_RETENTION": bad}
    with pytest.raises(ConfigError, match=r"RECORDS_RETENTION: records_retention: expected a"):
        load_settings(environ=env, cwd=tmp_path)


def manifest(retention: str) -> str:
    return f"functions:\n  resize:\n    handler: main.handler\n{retention}"


def test_a_function_may_keep_its_records_longer_or_shorter(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def handler(event, context):\n    return event\n")
    file = tmp_path / "triggerfish.yaml"
    kept = parse_manifest(manifest("    records_retention: 30d\n"), file).functions["resize"]
    assert kept.records_retention == 30 * 86400
    assert kept.version_config()["records_retention"] == 30 * 86400
    default = parse_manifest(manifest(""), file).functions["resize"]
    # Versions deployed before the setting existed keep their digest.
    assert "records_retention" not in default.version_config()
    with pytest.raises(ConfigError, match=r"functions\.resize\.records_retention"):
        parse_manifest(manifest("    records_retention: someday\n"), file)

"""``dedupe_window``: a duration for the node (triggerfish.toml, the environment), with
the default of a day kept, and clear errors for what is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.config import load_settings
from triggerfish.errors import ConfigError


def test_the_dedupe_window_is_a_day_unless_told(tmp_path: Path) -> None:
    assert load_settings(environ={}, cwd=tmp_path).dedupe_window == 86400
    (tmp_path / "triggerfish.toml").write_text('dedupe_window = "10m"\n')
    assert load_settings(environ={}, cwd=tmp_path).dedupe_window == 600
    env = {"TRIGGERFISH_DEDUPE_WINDOW": "2h"}
    assert load_settings(environ=env, cwd=tmp_path).dedupe_window == 7200
    env = {"TRIGGERFISH_DEDUPE_WINDOW": "90"}
    assert load_settings(environ=env, cwd=tmp_path).dedupe_window == 90


@pytest.mark.parametrize("bad", ["never", "0", "-5m", ""])
def test_a_dedupe_window_that_is_no_duration_is_refused(tmp_path: Path, bad: str) -> None:
    env = {"TRIGGERFISH_DEDUPE_WINDOW": bad}
    with pytest.raises(ConfigError, match=r"DEDUPE_WINDOW: dedupe_window: expected a duration"):
        load_settings(environ=env, cwd=tmp_path)

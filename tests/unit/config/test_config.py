"""Settings: flags over TRIGGERFISH_* variables over triggerfish.toml over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.config import load_settings
from triggerfish.errors import ConfigError


def test_defaults_serve_loopback_8080_with_a_local_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path(".triggerfish")
    assert settings.resolved_store_url == "sqlite:///.triggerfish/store.db"
    assert settings.resolved_bus_url == "sqlite:///.triggerfish/bus.db"
    assert settings.resolved_url == "http://127.0.0.1:8080"


def test_precedence_flag_env_file(tmp_path: Path) -> None:
    (tmp_path / "triggerfish.toml").write_text(
        'port = 9000\nhost = "0.0.0.0"\ndata-dir = "/srv/tf"\n'
    )
    env = {"TRIGGERFISH_PORT": "9100", "TRIGGERFISH_DATA": "/var/tf"}
    settings = load_settings({"port": 9200, "host": None}, environ=env, cwd=tmp_path)
    assert settings.port == 9200
    assert settings.data_dir == Path("/var/tf")
    assert settings.host == "0.0.0.0"
    # A server bound to every address is reached on loopback by the CLI.
    assert settings.resolved_url == "http://127.0.0.1:9200"


def test_bad_values_say_where_they_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TRIGGERFISH_PORT.*expected int"):
        load_settings(environ={"TRIGGERFISH_PORT": "eighty"}, cwd=tmp_path)
    (tmp_path / "triggerfish.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(environ={}, cwd=tmp_path)

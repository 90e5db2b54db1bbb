"""Saved contexts: the file `triggerfish login` writes, and how a command picks its server."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from triggerfish.cli.client import reach
from triggerfish.cli.contexts import (
    Contexts,
    Profile,
    check_profile_name,
    contexts_path,
    mask_token,
    resolve,
)
from triggerfish.cli.root import hoist
from triggerfish.config import Settings, load_settings, user_config_dir
from triggerfish.errors import ConfigError

TOKEN = "tfk_abcdefgh1234_" + "s" * 40
OTHER = "tfk_zyxwvuts9876_" + "t" * 40


def saved(tmp_path: Path, current: str = "") -> Contexts:
    contexts = Contexts(
        tmp_path / "cfg" / "contexts.toml",
        {
            "prod": Profile("prod", "https://prod.example.com", TOKEN),
            "staging": Profile("staging", "https://staging.example.com", OTHER),
        },
        current,
    )
    contexts.save()
    return Contexts.load(contexts.path)


def local(tmp_path: Path, **values: object) -> Settings:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "admin.token").write_text("tfk_localadmin12_" + "a" * 40 + "\n")
    return load_settings({"data_dir": data, **values}, environ={}, cwd=tmp_path)


def test_the_file_round_trips_and_only_its_owner_can_read_it(tmp_path: Path) -> None:
    contexts = saved(tmp_path, current="prod")
    assert contexts.current == "prod"
    assert contexts.profiles["staging"] == Profile("staging", "https://staging.example.com", OTHER)
    assert stat.S_IMODE(contexts.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(contexts.path.parent.stat().st_mode) == 0o700
    # Written whole then moved in place: no temporary file is left beside it.
    assert [p.name for p in contexts.path.parent.iterdir()] == ["contexts.toml"]


def test_quotes_and_non_ascii_survive_the_file(tmp_path: Path) -> None:
    path = tmp_path / "contexts.toml"
    odd = Profile("odd", 'https://h.example.com/a"b\\c/é', 'to"ken\\')
    Contexts(path, {"odd": odd}, "odd").save()
    assert Contexts.load(path).profiles["odd"] == odd


def test_no_file_means_no_contexts(tmp_path: Path) -> None:
    contexts = Contexts.load(tmp_path / "missing.toml")
    assert (contexts.profiles, contexts.current) == ({}, "")


def test_a_broken_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "contexts.toml"
    path.write_text("[profiles.prod]\ntoken = 'no url'\n")
    with pytest.raises(ConfigError, match=r"contexts.toml is not a valid.*triggerfish login"):
        Contexts.load(path)


def test_the_file_lives_in_the_xdg_config_folder(tmp_path: Path) -> None:
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    assert contexts_path(xdg) == tmp_path / "xdg" / "triggerfish" / "contexts.toml"
    # A relative XDG_CONFIG_HOME is ignored, as the XDG specification says.
    relative = {"XDG_CONFIG_HOME": "rel", "HOME": str(tmp_path)}
    assert user_config_dir(relative) == tmp_path / ".config" / "triggerfish"


def test_profile_names_are_checked() -> None:
    assert check_profile_name("prod-eu.1") == "prod-eu.1"
    with pytest.raises(ConfigError, match="invalid profile name"):
        check_profile_name("bad name")


def test_a_masked_token_never_shows_its_secret() -> None:
    assert mask_token(TOKEN) == "tfk_abcdefgh1234_****"
    assert "s" * 8 not in mask_token(TOKEN)
    assert mask_token("x" * 30 + "WXYZ") == "****WXYZ"
    assert mask_token("short") == "****"
    assert mask_token("") == "(none)"


def test_the_url_setting_comes_first(tmp_path: Path) -> None:
    contexts = saved(tmp_path, current="prod")
    settings = local(tmp_path, url="http://explicit:1/")
    target = resolve(settings, lambda: contexts, profile="staging", data_dir_given=True)
    assert target.url == "http://explicit:1"
    assert target.token.startswith("tfk_localadmin12_")  # the data directory's admin token


def test_a_named_data_directory_beats_profiles_and_the_current_context(tmp_path: Path) -> None:
    contexts = saved(tmp_path, current="prod")
    settings = local(tmp_path)
    target = resolve(settings, lambda: contexts, profile="staging", data_dir_given=True)
    assert target.url == "http://127.0.0.1:8080"
    assert target.token.startswith("tfk_localadmin12_")


def test_a_selected_profile_beats_the_current_context(tmp_path: Path) -> None:
    contexts = saved(tmp_path, current="prod")
    target = resolve(local(tmp_path), lambda: contexts, profile="staging")
    assert (target.url, target.token) == ("https://staging.example.com", OTHER)
    assert target.source == "profile staging"


def test_the_current_context_beats_the_local_server(tmp_path: Path) -> None:
    target = resolve(local(tmp_path), lambda: saved(tmp_path, current="prod"))
    assert (target.url, target.token) == ("https://prod.example.com", TOKEN)
    assert target.source == "current context prod"


def test_with_nothing_saved_the_local_server_is_used(tmp_path: Path) -> None:
    settings = local(tmp_path)
    target = resolve(settings, lambda: saved(tmp_path))
    assert target.url == "http://127.0.0.1:8080"
    # `triggerfish up --port` records where it listens: commands follow it there.
    settings.server_url_path.write_text("http://127.0.0.1:18123\n")
    assert resolve(settings, lambda: saved(tmp_path)).url == "http://127.0.0.1:18123"
    # A port chosen for the command wins over what was recorded.
    assert resolve(local(tmp_path, port=9001), lambda: saved(tmp_path)).url.endswith(":9001")


def test_a_token_from_the_environment_goes_with_any_server(tmp_path: Path) -> None:
    settings = local(tmp_path, token="tfk_fromenviron1_" + "e" * 40)
    target = resolve(settings, lambda: saved(tmp_path, current="prod"))
    assert target.url == "https://prod.example.com"
    assert target.token == settings.token
    assert target.token_source == "TRIGGERFISH_TOKEN"


def test_an_unknown_profile_lists_the_saved_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no saved context named 'qa' \(saved: prod, staging\)"):
        resolve(local(tmp_path), lambda: saved(tmp_path), profile="qa")


def test_the_contexts_are_not_read_when_they_do_not_decide(tmp_path: Path) -> None:
    def broken() -> Contexts:
        raise ConfigError("unreadable")

    assert resolve(local(tmp_path, url="http://x:1"), broken).url == "http://x:1"
    assert resolve(local(tmp_path), broken, data_dir_given=True).url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ls", "--profile", "prod", "--json"], ["--profile", "prod", "ls", "--json"]),
        (["topics", "ls", "--wide"], ["--wide", "topics", "ls"]),
        (["ls", "--profile=prod"], ["--profile=prod", "ls"]),
        (["publish", "t", "--", "--wide"], ["publish", "t", "--", "--wide"]),
        (["ls", "--profile"], ["--profile", "ls"]),
    ],
)
def test_root_options_are_accepted_after_the_command(args: list[str], expected: list[str]) -> None:
    assert hoist(args) == expected


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shell in an empty folder, with no TRIGGERFISH_* variables and no saved context."""
    for name in list(os.environ):
        if name.startswith("TRIGGERFISH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def up_at(data_dir: Path | None, port: int) -> Settings:
    """The settings of `triggerfish up --port PORT [--data-dir DIR]` once it recorded its URL."""
    settings = load_settings({"port": port, "data_dir": data_dir})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.server_url_path.write_text(settings.resolved_url + "\n")
    return settings


def test_up_on_another_port_is_reached_as_is(shell: Path) -> None:
    assert reach(up_at(None, 18123))("triggerfish ls") == "triggerfish ls"


def test_up_elsewhere_is_reached_with_its_data_directory(shell: Path) -> None:
    command = reach(up_at(Path("srv/data"), 18123))("triggerfish ls")
    assert command == f"triggerfish ls --data-dir {shell / 'srv' / 'data'}"


def test_up_behind_a_current_context_is_reached_with_its_data_directory(shell: Path) -> None:
    Contexts(contexts_path(), {"prod": Profile("prod", "https://p", TOKEN)}, "prod").save()
    command = reach(up_at(None, 18123))("triggerfish ls")
    assert command == f"triggerfish ls --data-dir {shell / '.triggerfish'}"


def test_up_behind_another_url_is_reached_with_its_url(
    shell: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGERFISH_URL", "https://elsewhere.example.com")
    command = reach(up_at(None, 18123))("triggerfish ls")
    assert command == (
        f"TRIGGERFISH_URL=http://127.0.0.1:18123 triggerfish ls --data-dir {shell / '.triggerfish'}"
    )

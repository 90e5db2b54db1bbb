"""Shell completion: the scripts for bash and zsh, and the answers they ask for."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from triggerfish.cli.contexts import Contexts, Profile
from triggerfish.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _shell_named_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer detects the shell it runs under; this lets a test name it instead.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o default -F _triggerfish_completion triggerfish"),
        ("zsh", "#compdef triggerfish"),
    ],
)
def test_show_completion_prints_the_script_for_the_shell(shell: str, marker: str) -> None:
    result = runner.invoke(app, ["--show-completion", shell], prog_name="triggerfish")
    assert result.exit_code == 0, result.output
    assert marker in result.output
    assert "_TRIGGERFISH_COMPLETE" in result.output


def test_bash_completes_commands() -> None:
    env = {
        "_TRIGGERFISH_COMPLETE": "complete_bash",
        "COMP_WORDS": "triggerfish cont",
        "COMP_CWORD": "1",
    }
    result = runner.invoke(app, [], prog_name="triggerfish", env=env)
    assert result.output.split() == ["context"]


def test_zsh_completes_saved_profile_names(tmp_path: Path) -> None:
    config = tmp_path / "config"
    Contexts(
        config / "triggerfish" / "contexts.toml",
        {n: Profile(n, "http://x:1", "t") for n in ("prod", "preview", "staging")},
    ).save()
    env = {
        "XDG_CONFIG_HOME": str(config),
        "_TRIGGERFISH_COMPLETE": "complete_zsh",
        "_TYPER_COMPLETE_ARGS": "triggerfish context use pr",
    }
    result = runner.invoke(app, [], prog_name="triggerfish", env=env)
    assert '"preview"' in result.output
    assert '"prod"' in result.output
    assert "staging" not in result.output

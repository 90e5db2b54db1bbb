"""The CLI finds its server without environment variables: the hint `triggerfish up`
prints works as printed, `login` saves a context that later commands use, `--profile`
chooses another; and what it prints for people has ISO times, whole ids and no internal
topics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from support.projects import write_project
from support.server import ROOT, Server, wait_for
from triggerfish.cli.client import CliError
from triggerfish.cli.contexts import Contexts, Profile
from triggerfish.cli.main import app

pytestmark = pytest.mark.e2e

ECHO = """
def handler(event, context):
    return event
"""
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-home")


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    # A port and a data directory other than the defaults, and no saved context.
    env = {"XDG_CONFIG_HOME": str(home / "config"), "HOME": str(home)}
    server = Server(home / "elsewhere" / "data", env=env).start()
    try:
        server.cli("deploy", str(write_project(home / "project", {"echo": (ECHO, {})})), check=True)
        server.cli("invoke", "echo", "--data", '{"n": 1}', check=True)
        server.cli("invoke", "echo", "--async", check=True)
        yield server
    finally:
        server.stop()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """The CLI as a person runs it: no TRIGGERFISH_* variables, in an empty folder."""
    for name in list(os.environ):
        if name.startswith("TRIGGERFISH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input, prog_name="triggerfish")


def exit_code(result: Result) -> int:
    """The process's exit code: ``main()`` turns a ``CliError`` into its code."""
    if isinstance(result.exception, CliError):
        return result.exception.code
    return result.exit_code


def test_the_hint_of_up_works_as_printed(server: Server, home: Path) -> None:
    printed = wait_for(
        lambda: re.search(r"use it from another terminal: (.+)", server.output()),
        what="the hint of triggerfish up",
    ).group(1)
    assert "--data-dir" in printed  # the data directory is not the default one
    env = {k: v for k, v in server.env.items() if not k.startswith("TRIGGERFISH_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", printed], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "echo" in result.stdout


def test_login_saves_a_context_that_commands_use(server: Server, cli: CliRunner) -> None:
    result = run(cli, "login", server.url, "--token-stdin", "--profile", "lab", input=server.token)
    assert result.exit_code == 0, result.output
    assert "saved as profile lab" in result.output
    saved = Contexts.load()
    assert saved.current == "lab"
    assert saved.path.stat().st_mode & 0o077 == 0

    listed = run(cli, "ls", "--json")
    assert listed.exit_code == 0, listed.output
    assert [f["name"] for f in json.loads(listed.output)["functions"]] == ["echo"]

    shown = run(cli, "context", "show", "--json")
    assert json.loads(shown.output)["from"] == "current context lab"
    assert server.token not in run(cli, "context", "ls").output
    assert server.token not in shown.output

    out = run(cli, "logout")
    assert out.exit_code == 0, out.output
    assert json.loads(run(cli, "context", "show", "--json").output)["from"].startswith(
        "the server of"
    )


def test_login_refuses_a_wrong_token_and_saves_nothing(server: Server, cli: CliRunner) -> None:
    result = run(cli, "login", server.url, "--token", "tfk_aaaaaaaaaaaa_" + "b" * 32)
    assert exit_code(result) == 4
    assert "refused the token" in str(result.exception)
    assert Contexts.load().profiles == {}


def test_a_profile_chosen_for_one_command_beats_the_current_context(
    server: Server, cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dead = "http://127.0.0.1:9"  # discard: nothing answers there
    Contexts(
        tmp_path / "config" / "triggerfish" / "contexts.toml",
        {"dead": Profile("dead", dead, "x"), "lab": Profile("lab", server.url, server.token)},
        "dead",
    ).save()
    failed = run(cli, "ls")
    assert exit_code(failed) == 5
    assert dead in str(failed.exception)
    assert run(cli, "ls", "--json", "--profile", "lab").exit_code == 0
    assert run(cli, "--profile", "lab", "ls").exit_code == 0
    monkeypatch.setenv("TRIGGERFISH_PROFILE", "lab")
    assert run(cli, "ls").exit_code == 0


@pytest.fixture
def lab(server: Server, cli: CliRunner) -> CliRunner:
    """The CLI with the test's server as its current context."""
    Contexts(Contexts.load().path, {"lab": Profile("lab", server.url, server.token)}, "lab").save()
    return cli


def test_tables_show_iso_times_and_whole_ids(lab: CliRunner) -> None:
    ids = [r["id"] for r in json.loads(run(lab, "invocations", "--json").output)]
    assert len(ids) == 2
    table = run(lab, "invocations")
    assert table.exit_code == 0, table.output
    for invocation_id in ids:
        assert invocation_id in table.output
    assert re.search(ISO, table.output)
    assert not re.search(r"\b1\d{9}\.\d+", table.output)  # no Unix seconds
    one = run(lab, "invocations", ids[0], "--wide")
    assert re.search(rf"started_at: {ISO}", one.output), one.output
    tokens = run(lab, "tokens", "ls")
    assert re.search(ISO, tokens.output), tokens.output


def test_internal_topics_are_hidden_unless_all(lab: CliRunner) -> None:
    assert "_invoke.echo" not in run(lab, "topics", "ls").output
    assert "_invoke.echo" not in run(lab, "topics", "ls", "--json").output
    everything = json.loads(run(lab, "topics", "ls", "--all", "--json").output)
    internal = {t["name"]: t["internal"] for t in everything}
    assert internal["_invoke.echo"] is True
    assert "_invoke.echo" in run(lab, "topics", "ls", "--all").output

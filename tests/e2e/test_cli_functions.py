"""``triggerfish functions show / rm`` and ``triggerfish deploy --prune`` against a
running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import run
from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

ECHO = "def handler(event, context):\n    return event\n"
ECHO_2 = "def handler(event, context):\n    return {'v': 2}\n"


def settings(topic: str) -> dict[str, object]:
    return {"triggers": [{"topic": topic, "retry": {"max_attempts": 2}}], "memory": 256}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("functions") / "data").start()
    yield server
    server.stop()


def names(server: Server) -> list[str]:
    return [f["name"] for f in run(server, "functions", "ls", "--json").json()["functions"]]


def test_show_gives_versions_aliases_triggers_and_settings(server: Server, tmp_path: Path) -> None:
    manifest = write_project(tmp_path / "p", {"shown": (ECHO, settings("shown-in"))})
    assert run(server, "deploy", str(manifest)).code == 0
    write_project(tmp_path / "p", {"shown": (ECHO_2, settings("shown-in"))})
    assert run(server, "deploy", str(manifest)).code == 0

    shown = run(server, "functions", "show", "shown", "--json").json()
    assert [v["number"] for v in shown["versions"]] == [1, 2]
    assert shown["aliases"]["live"] == shown["versions"][1]["version"]
    (trigger,) = [t for t in shown["triggers"] if not t["topic"].startswith("_")]
    assert (trigger["id"], trigger["topic"]) == ("shown.shown-in", "shown-in")

    text = run(server, "functions", "show", "shown")
    assert text.code == 0, text.err
    for expected in ("versions", "aliases", "triggers", "shown.shown-in", "memory: 256"):
        assert expected in text.out
    assert "settings of live (version 2)" in text.out


def test_rm_asks_for_yes_then_removes_everything(server: Server, tmp_path: Path) -> None:
    manifest = write_project(tmp_path / "p", {"doomed": (ECHO, settings("doomed-in"))})
    assert run(server, "deploy", str(manifest)).code == 0

    refused = run(server, "functions", "rm", "doomed")
    assert refused.code == 2
    assert "--yes" in refused.err
    assert "doomed" in names(server)

    removed = run(server, "functions", "rm", "doomed", "--yes")
    assert removed.code == 0, removed.err
    assert "removed function doomed with its 1 version(s), 1 alias(es) and 1 trigger(s)" in (
        removed.out
    )
    assert "doomed" not in names(server)
    triggers = run(server, "ls", "--json").json()["triggers"]
    assert not [t for t in triggers if t["function"] == "doomed"]
    assert run(server, "functions", "show", "doomed").code == 3


def test_rm_of_an_unknown_function_is_not_found(server: Server) -> None:
    done = run(server, "functions", "rm", "never-deployed", "--yes")
    assert done.code == 3
    assert "never-deployed" in done.err


def test_deploy_prune_removes_only_undeclared_functions(server: Server, tmp_path: Path) -> None:
    both = write_project(
        tmp_path / "both",
        {"keep": (ECHO, settings("keep-in")), "drop": (ECHO, settings("drop-in"))},
    )
    assert run(server, "deploy", str(both)).code == 0
    others = set(names(server)) - {"keep", "drop"}  # deployed by the other tests
    one = write_project(tmp_path / "one", {"keep": (ECHO_2, settings("keep-in"))})

    dry = run(server, "deploy", str(one), "--prune", "--dry-run", "--json").json()
    assert dry["would_prune"] == sorted({"drop"} | others)
    assert {"keep", "drop"} <= set(names(server))
    shown = run(server, "functions", "show", "keep", "--json").json()
    assert len(shown["versions"]) == 1  # a dry run deploys nothing

    pruned = run(server, "deploy", str(one), "--prune", "--json").json()
    assert pruned["pruned"] == sorted({"drop"} | others)
    assert pruned["functions"][0]["number"] == 2
    assert names(server) == ["keep"]
    topics = [t["name"] for t in run(server, "topics", "ls", "--json").json()]
    assert "drop-in" in topics  # topics are never pruned

    again = run(server, "deploy", str(one), "--prune")
    assert again.code == 0, again.err
    assert "nothing to remove" in again.out


def test_dry_run_needs_prune(server: Server, tmp_path: Path) -> None:
    manifest = write_project(tmp_path / "p", {"keep": (ECHO, settings("keep-in"))})
    done = run(server, "deploy", str(manifest), "--dry-run")
    assert done.code == 2
    assert "--prune" in done.err

"""A function's requirements.txt is installed at deploy time into its own environment,
reused while the requirements stay the same; a failed install fails the deploy with the
installer's message and the previous version keeps answering."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

# A small pure-Python package from PyPI that the server does not depend on.
PACKAGE = "tabulate"
MISSING = "triggerfish-no-such-package-4e1d"
HANDLER = """
import sys
import tabulate

VERSION = {version}

def handler(event, context):
    try:
        import fastapi  # the server's own dependency
        leaked = True
    except ImportError:
        leaked = False
    table = tabulate.tabulate([[1, 2]], headers=["a", "b"])
    return {{"version": VERSION, "prefix": sys.prefix, "leaked": leaked, "table": table}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("deps") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def project(root: Path, version: int, requirements: str) -> Path:
    manifest = write_project(root, {"report": (HANDLER.format(version=version), {})})
    (root / "report" / "requirements.txt").write_text(textwrap.dedent(requirements))
    return manifest


def invoke(api: httpx.Client) -> dict[str, Any]:
    response = api.post("/v1/functions/report/invoke", json={})
    assert response.status_code == 200
    assert "x-triggerfish-function-error" not in response.headers, response.text
    body: dict[str, Any] = response.json()
    return body


def environments(server: Server) -> list[str]:
    envs = server.data_dir / "envs"
    return sorted(p.name for p in envs.iterdir() if p.is_dir() and not p.name.startswith("_"))


def test_requirements_are_installed_reused_and_a_bad_one_keeps_the_old_version(
    server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    # First deploy: the environment is built and the function imports the package.
    server.cli("deploy", str(project(tmp_path / "one", 1, f"{PACKAGE}\n")), check=True)
    first = invoke(api)
    assert first["version"] == 1
    assert first["table"].split()[:2] == ["a", "b"]
    assert first["leaked"] is False
    assert Path(first["prefix"]).parent == server.data_dir.resolve() / "envs"
    build = api.get("/v1/functions/report/build").json()
    assert build["status"] == "built"
    assert f"+ {PACKAGE}==" in build["log"]

    # New code, same requirements: nothing is built, the environment is shared.
    deployed = server.cli(
        "deploy", str(project(tmp_path / "two", 2, f"{PACKAGE}\n")), "--json", check=True
    )
    assert '"created": true' in deployed.stdout
    again = api.get("/v1/functions/report/build").json()
    assert again["status"] == "cached"
    assert again["key"] == build["key"]
    assert again["log"] == build["log"]
    second = invoke(api)
    assert (second["version"], second["prefix"]) == (2, first["prefix"])
    assert environments(server) == [build["key"]]

    # A requirement that cannot be installed: the deploy fails with uv's own words.
    failed = server.cli("deploy", str(project(tmp_path / "three", 3, f"{MISSING}==1.0\n")))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    message = " ".join(failed.stderr.split())  # the terminal may wrap it
    assert "installing the dependencies of report failed" in message
    assert f"{MISSING} was not found in the package registry" in message
    assert invoke(api)["version"] == 2
    status = api.get("/v1/functions/report/build").json()
    assert status["status"] == "failed"
    assert "build failed" in status["log"]
    versions = api.get("/v1/functions/report").json()["versions"]
    assert [v["number"] for v in versions] == [1, 2]

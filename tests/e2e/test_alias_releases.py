"""Weighted and pinned aliases against a running Triggerfish: boto3's alias operations
with ``RoutingConfig``, ``Invoke`` answering the version that ran, the CLI's
``alias set --weight`` / ``alias ls`` / ``alias follow``, and ``deploy`` leaving a
pinned ``live`` where the user put it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from support.lambda_api import lambda_client, new_key
from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

VERSIONED = """
def handler(event, context):
    return {{"v": {version}}}
"""


def deploy(server: Server, root: Path, version: int) -> str:
    """Deploy ``greet`` answering ``version``; the deploy's output."""
    manifest = write_project(root, {"greet": (VERSIONED.format(version=version), {})})
    return server.cli("deploy", str(manifest), check=True).stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("weighted")
    server = Server(root / "data").start()
    try:
        for version in (1, 2):
            deploy(server, root / "project", version)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> BaseClient:
    return lambda_client(server, new_key(server))


def test_boto3_sets_reads_and_invokes_a_weighted_alias(client: BaseClient) -> None:
    created = client.create_alias(
        FunctionName="greet",
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}},
    )
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    updated = client.update_alias(
        FunctionName="greet",
        Name="canary",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert (updated["FunctionVersion"], updated["RoutingConfig"]) == (
        "1",
        {"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert client.get_alias(FunctionName="greet", Name="canary")["RoutingConfig"] == {
        "AdditionalVersionWeights": {"2": 0.5}
    }
    listed = {a["Name"]: a for a in client.list_aliases(FunctionName="greet")["Aliases"]}
    assert listed["canary"]["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    assert "RoutingConfig" not in listed["live"]

    executed: Counter[str] = Counter()
    for _ in range(60):
        reply = client.invoke(FunctionName="greet", Qualifier="canary", Payload=b"{}")
        body = json.loads(reply["Payload"].read())
        assert str(body["v"]) == reply["ExecutedVersion"]
        executed[reply["ExecutedVersion"]] += 1
    assert set(executed) == {"1", "2"}

    # An empty routing ends it: every call runs version 1 again.
    cleared = client.update_alias(
        FunctionName="greet", Name="canary", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in cleared
    replies = [client.invoke(FunctionName="greet:canary", Payload=b"{}") for _ in range(10)]
    assert {r["ExecutedVersion"] for r in replies} == {"1"}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"2": 1.5}, "must be a number from 0 up to, not including, 1"),
        ({"9": 0.1}, "no version '9'"),
        ({"1": 0.1}, "is the alias's main version"),
        ({"latest": 0.1}, "is not a version number"),
    ],
)
def test_boto3_gets_a_clear_error_for_a_routing_it_cannot_have(
    client: BaseClient, weights: dict[str, float], message: str
) -> None:
    with pytest.raises(ClientError) as caught:
        client.update_alias(
            FunctionName="greet",
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": weights},
        )
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidParameterValueException"
    assert message in error["Error"]["Message"]


def test_the_cli_weighs_pins_and_follows(server: Server, tmp_path: Path) -> None:
    out = server.cli("alias", "set", "greet", "live", "1", "--weight", "2=0.1", check=True)
    assert "greet:live -> version 1" in out.stdout
    assert "version 2: 0.1 (10.0%)" in out.stdout
    listed = json.loads(server.cli("alias", "ls", "greet", "--json", check=True).stdout)
    live = next(a for a in listed if a["alias"] == "live")
    assert (live["number"], live["routing"], live["following"]) == (1, {"2": 0.1}, False)
    table = server.cli("alias", "ls", "greet", check=True).stdout
    assert "version 2: 0.1" in table
    assert "pinned" in table

    bad = server.cli("alias", "set", "greet", "live", "1", "--weight", "2=lots")
    assert bad.returncode == 2
    assert "'lots' is not a number" in bad.stderr

    # A deploy of new code makes version 3 and leaves the pinned live where it is.
    output = deploy(server, tmp_path / "project", 3)
    assert "live stays at version 1, pinned by alias set at" in output
    assert "triggerfish alias follow greet live" in output
    listed = json.loads(server.cli("alias", "ls", "greet", "--json", check=True).stdout)
    assert next(a for a in listed if a["alias"] == "live")["number"] == 1

    followed = server.cli("alias", "follow", "greet", "live", check=True)
    assert "the next deploy moves it" in followed.stdout
    output = deploy(server, tmp_path / "project", 4)
    assert "live stays" not in output
    listed = json.loads(server.cli("alias", "ls", "greet", "--json", check=True).stdout)
    live = next(a for a in listed if a["alias"] == "live")
    assert (live["number"], live["routing"], live["following"]) == (4, {}, True)

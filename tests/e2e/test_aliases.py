"""Aliases through the CLI, the HTTP API and Lambda's alias operations (boto3): a
version is promoted and rolled back without a deploy, and calls and triggers that name
the alias follow it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from support.lambda_api import lambda_client, new_key
from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

VERSIONED = """
import json
import time

def handler(event, context):
    print(json.dumps({{"seen": event, "v": {version}}}))
    if isinstance(event, dict):
        time.sleep(event.get("sleep", 0))
    return {{"v": {version}}}
"""


def deploy_versions(server: Server, root: Path, *, trigger_alias: str | None = None) -> None:
    """Deploy ``greet`` three times: versions 1, 2 and 3, each returning its number."""
    for version in (1, 2, 3):
        settings: dict[str, object] = {}
        if trigger_alias is not None:
            settings["triggers"] = [{"topic": "greetings", "alias": trigger_alias}]
        manifest = write_project(root, {"greet": (VERSIONED.format(version=version), settings)})
        server.cli("deploy", str(manifest), check=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("aliases")
    server = Server(root / "data").start()
    try:
        deploy_versions(server, root / "project", trigger_alias="stable")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> BaseClient:
    return lambda_client(server, new_key(server))


def invoke(server: Server, qualifier: str) -> int:
    result = server.cli("invoke", f"greet:{qualifier}", "--json", check=True)
    body = json.loads(result.stdout)
    return int(body.get("result", body)["v"])


def test_cli_moves_an_alias_and_invokes_follow(server: Server) -> None:
    server.cli("alias", "set", "greet", "stable", "1", check=True)
    assert invoke(server, "stable") == 1
    assert invoke(server, "live") == 3

    server.cli("alias", "set", "greet", "stable", "2", check=True)
    assert invoke(server, "stable") == 2

    listed = json.loads(server.cli("alias", "ls", "greet", "--json", check=True).stdout)
    assert {(a["alias"], a["number"]) for a in listed} >= {("live", 3), ("stable", 2)}


def test_rolling_live_back_changes_the_default_version(server: Server) -> None:
    with server.client() as api:
        moved = api.put("/v1/functions/greet/aliases/live", json={"version": 1})
        assert moved.status_code == 200, moved.text
        assert moved.json()["number"] == 1
        assert invoke(server, "live") == 1
        assert api.put("/v1/functions/greet/aliases/live", json={"version": 3}).status_code == 200
    assert invoke(server, "live") == 3


def test_a_trigger_follows_its_alias_from_one_event_to_the_next(server: Server) -> None:
    with server.client() as api:
        versions = api.get("/v1/functions/greet").json()["versions"]
        ids = {v["number"]: v["version"] for v in versions}
        headers = {"content-type": "application/cloudevents+json"}

        def handle(event_id: str) -> list[object]:
            event = {"specversion": "1.0", "id": event_id, "source": "t", "type": "hello"}
            assert api.post("/v1/topics/greetings/events", json=event, headers=headers).is_success

            def handled() -> list[dict[str, object]]:
                records = api.get("/v1/invocations", params={"function": "greet"}).json()
                return [r for r in records["invocations"] if event_id in r["event_ids"]]

            return [r["version"] for r in wait_for(handled, what=f"{event_id} to be handled")]

        # The trigger handles an event, then waits for the next one while the alias
        # moves under it: the next event runs the version the alias names now.
        server.cli("alias", "set", "greet", "stable", "2", check=True)
        assert handle("to-stable-2") == [ids[2]]
        server.cli("alias", "set", "greet", "stable", "1", check=True)
        assert handle("to-stable-1") == [ids[1]]


def test_the_executed_version_is_the_one_that_ran_while_the_alias_moved(
    server: Server, client: BaseClient
) -> None:
    server.cli("alias", "set", "greet", "midway", "1", check=True)
    with server.client() as api:
        ids = {v["number"]: v["version"] for v in api.get("/v1/functions/greet").json()["versions"]}
    with ThreadPoolExecutor(2) as pool:
        native = pool.submit(
            lambda: httpx.post(
                f"{server.url}/v1/functions/greet/invoke",
                params={"qualifier": "midway"},
                json={"sleep": 1.5},
                headers={"Authorization": f"Bearer {server.token}"},
                timeout=30,
            )
        )
        boto = pool.submit(
            client.invoke, FunctionName="greet", Qualifier="midway", Payload=b'{"sleep": 1.5}'
        )
        time.sleep(0.4)  # both calls run version 1 now
        with server.client() as api:
            moved = api.put("/v1/functions/greet/aliases/midway", json={"version": 2})
            assert moved.status_code == 200, moved.text
        ran_native, ran_boto = native.result(), boto.result()
    assert ran_native.json() == {"v": 1}
    assert ran_native.headers["x-triggerfish-executed-version"] == ids[1]
    assert json.loads(ran_boto["Payload"].read()) == {"v": 1}
    assert ran_boto["ExecutedVersion"] == "1"
    assert invoke(server, "midway") == 2


def test_alias_errors_say_what_is_wrong(server: Server) -> None:
    with server.client() as api:
        unknown = api.put("/v1/functions/greet/aliases/beta", json={"version": 99})
        assert unknown.status_code == 404
        assert "has no version '99'" in unknown.json()["detail"]

        bad = api.put("/v1/functions/greet/aliases/123", json={"version": 1})
        assert bad.status_code == 400
        assert "not only digits" in bad.json()["detail"]

        live = api.delete("/v1/functions/greet/aliases/live")
        assert live.status_code == 400
        assert "cannot be deleted" in live.json()["detail"]

        missing = api.delete("/v1/functions/greet/aliases/nope")
        assert missing.status_code == 404

    failed = server.cli("alias", "set", "greet", "beta", "42")
    assert failed.returncode == 3
    assert "has no version '42'" in failed.stderr + failed.stdout


def test_lambda_alias_operations_with_boto3(server: Server, client: BaseClient) -> None:
    created = client.create_alias(FunctionName="greet", Name="canary", FunctionVersion="2")
    assert created["Name"] == "canary"
    assert created["FunctionVersion"] == "2"
    assert created["AliasArn"].endswith(":function:greet:canary")

    reply = client.invoke(FunctionName="greet", Qualifier="canary", Payload=b"{}")
    assert json.loads(reply["Payload"].read()) == {"v": 2}

    with pytest.raises(ClientError) as exists:
        client.create_alias(FunctionName="greet", Name="canary", FunctionVersion="1")
    assert exists.value.response["Error"]["Code"] == "ResourceConflictException"

    updated = client.update_alias(FunctionName="greet", Name="canary", FunctionVersion="1")
    assert updated["FunctionVersion"] == "1"
    assert client.get_alias(FunctionName="greet", Name="canary")["FunctionVersion"] == "1"
    reply = client.invoke(FunctionName="greet:canary", Payload=b"{}")
    assert json.loads(reply["Payload"].read()) == {"v": 1}

    names = [a["Name"] for a in client.list_aliases(FunctionName="greet")["Aliases"]]
    assert "canary" in names
    assert "live" in names
    only_v1 = client.list_aliases(FunctionName="greet", FunctionVersion="1")["Aliases"]
    assert {a["FunctionVersion"] for a in only_v1} == {"1"}

    latest = client.update_alias(FunctionName="greet", Name="canary", FunctionVersion="$LATEST")
    assert latest["FunctionVersion"] == "3"

    client.delete_alias(FunctionName="greet", Name="canary")
    with pytest.raises(ClientError) as gone:
        client.get_alias(FunctionName="greet", Name="canary")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as weighted:
        client.create_alias(
            FunctionName="greet",
            Name="split",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}},
        )
    assert "weight of version 2" in weighted.value.response["Error"]["Message"]

"""Lambda code and tools run unchanged: boto3 and pkg_resources in every Python function
(a function's own pinned boto3 wins), layers as Lambda makes /opt available, the trace
header, a real-looking region, the START line's version, GetAccountSettings, and
Lambda-shaped answers to operations Triggerfish does not serve."""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from support.lambda_api import lambda_client, new_key
from support.projects import write_project
from support.server import Server

pytestmark = pytest.mark.e2e

PINNED_BOTO3 = "1.34.0"
TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$")
SITE = f"python/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"

HANDLER = """
import os
import boto3
import pkg_resources
import greeting
import shared_settings

def handler(event, context):
    return {
        "boto3": boto3.__version__,
        "boto3_file": boto3.__file__,
        "pkg_resources": hasattr(pkg_resources, "working_set"),
        "greeting": greeting.WORDS,
        "setting": shared_settings.VALUE,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "region": os.environ.get("AWS_REGION"),
        "default_region": os.environ.get("AWS_DEFAULT_REGION"),
        "arn": context.invoked_function_arn,
        "version": context.function_version,
        "opt": os.environ.get("TRIGGERFISH_OPT"),
        "tool": open(os.path.join(os.environ["TRIGGERFISH_OPT"], "bin", "tool")).read(),
    }
"""


def write_layers(root: Path, words: str) -> None:
    common = root / "layers" / "common"
    (common / "python").mkdir(parents=True, exist_ok=True)
    (common / "python" / "greeting.py").write_text(f"WORDS = {words!r}\n")
    (common / "bin").mkdir(exist_ok=True)
    (common / "bin" / "tool").write_text("a tool from the layer\n")
    site = root / "other-layer" / SITE
    site.mkdir(parents=True, exist_ok=True)
    (site / "shared_settings.py").write_text("VALUE = 'from site-packages'\n")


def write(root: Path, words: str) -> Path:
    write_layers(root, words)
    layers = {"layers": ["common", "./other-layer"]}
    manifest = write_project(root, {"plain": (HANDLER, layers), "pinned": (HANDLER, layers)})
    (root / "pinned" / "requirements.txt").write_text(f"boto3=={PINNED_BOTO3}\n")
    return manifest


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compat") / "project"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, project: Path) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("compat") / "data").start()
    try:
        server.cli("deploy", str(write(project, "hello")), check=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> BaseClient:
    return lambda_client(server, new_key(server))


def invoke(client: BaseClient, name: str, **options: Any) -> tuple[dict[str, Any], Any]:
    reply = client.invoke(FunctionName=name, Payload=b"{}", **options)
    body = json.loads(reply["Payload"].read())
    assert "FunctionError" not in reply, body
    return reply, body


def test_boto3_pkg_resources_and_layers_are_there_without_requirements(
    client: BaseClient,
) -> None:
    import boto3

    _, body = invoke(client, "plain")
    assert body["boto3"] == boto3.__version__  # the one the server bundles
    assert body["pkg_resources"] is True
    assert body["greeting"] == "hello"  # layers/common/python
    assert body["setting"] == "from site-packages"  # python/lib/python3.X/site-packages
    assert body["tool"] == "a tool from the layer\n"
    assert body["opt"].endswith(".triggerfish-opt")


def test_a_pinned_boto3_in_requirements_wins_and_layers_still_load(client: BaseClient) -> None:
    _, body = invoke(client, "pinned")
    assert body["boto3"] == PINNED_BOTO3
    assert "/_runtime/" not in body["boto3_file"]
    assert body["pkg_resources"] is True
    assert body["greeting"] == "hello"
    assert body["setting"] == "from site-packages"


def test_trace_header_region_and_start_version_match_the_api(client: BaseClient) -> None:
    reply, body = invoke(client, "plain", LogType="Tail")
    assert TRACE.match(body["trace"]), body["trace"]
    assert body["region"] == body["default_region"] == "us-east-1"
    assert body["arn"].startswith("arn:aws:lambda:us-east-1:")
    executed = reply["ExecutedVersion"]
    assert body["version"] == executed
    log = base64.b64decode(reply["LogResult"]).decode()
    assert f"START RequestId: {reply['ResponseMetadata']['RequestId']} Version: {executed}" in log
    described = client.get_function(FunctionName="plain")["Configuration"]
    assert described["FunctionArn"].startswith("arn:aws:lambda:us-east-1:")
    # $LATEST runs in environments that call their version so, as Lambda's do.
    latest, body = invoke(client, "plain", Qualifier="$LATEST", LogType="Tail")
    assert latest["ExecutedVersion"] == body["version"] == "$LATEST"
    assert "Version: $LATEST" in base64.b64decode(latest["LogResult"]).decode()
    # Two invocations, two traces.
    _, again = invoke(client, "plain")
    assert TRACE.match(again["trace"])
    assert again["trace"] != body["trace"]


def test_a_changed_layer_folder_changes_no_deployed_version(
    server: Server, client: BaseClient, project: Path
) -> None:
    write_layers(project, "changed on disk")
    _, body = invoke(client, "plain")
    assert body["greeting"] == "hello"
    server.cli("deploy", str(project / "triggerfish.yaml"), check=True)
    reply, body = invoke(client, "plain")
    assert body["greeting"] == "changed on disk"
    first, old = invoke(client, "plain", Qualifier="1")
    assert old["greeting"] == "hello"
    assert reply["ExecutedVersion"] != first["ExecutedVersion"]
    write_layers(project, "hello")


def test_a_missing_layer_folder_fails_the_deploy_with_its_path(
    server: Server, tmp_path: Path
) -> None:
    manifest = write_project(tmp_path, {"lonely": (HANDLER, {"layers": ["nowhere"]})})
    done = server.cli("deploy", str(manifest))
    assert done.returncode != 0
    assert "functions.lonely.layers[0]" in done.stderr + done.stdout
    assert str(tmp_path / "layers" / "nowhere") in done.stderr + done.stdout


def test_get_account_settings_reports_this_nodes_limits(client: BaseClient) -> None:
    settings = client.get_account_settings()
    limit, usage = settings["AccountLimit"], settings["AccountUsage"]
    assert limit["CodeSizeZipped"] == 250 * 1024 * 1024
    assert limit["CodeSizeUnzipped"] == 1024 * 1024 * 1024
    assert limit["ConcurrentExecutions"] >= 1
    assert limit["UnreservedConcurrentExecutions"] == limit["ConcurrentExecutions"]
    assert usage["FunctionCount"] >= 2
    assert 0 < usage["TotalCodeSize"] <= limit["TotalCodeSize"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2018-10-31/layers"),
        ("POST", "/2015-03-31/event-source-mappings/"),
        ("GET", "/2016-08-19/no-such-thing"),
    ],
)
def test_an_unknown_lambda_operation_is_a_lambda_error_not_s3_xml(
    server: Server, method: str, path: str
) -> None:
    with server.client() as api:
        reply = api.request(method, path)
    assert reply.status_code == 404
    assert reply.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert reply.headers["content-type"].startswith("application/json")
    assert "Unknown operation" in reply.json()["message"]


def test_an_unknown_operation_through_boto3_raises_its_client_error(client: BaseClient) -> None:
    with pytest.raises(client.exceptions.ClientError) as raised:
        client.list_layers()
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

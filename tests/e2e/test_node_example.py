"""The Node.js example, examples/s3-node, on a running server: deployed with its npm
packages (aws-sdk, from its lock file), it runs when boto3 uploads a file, and its log
shows the object's key decoded as Lambda code decodes it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from support.server import ROOT, Server, wait_for
from support.services import in_ci

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "s3-node"
FUNCTION = "process-upload"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        message = "Node.js and npm are not installed (scripts/install-node.sh installs them)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    server = Server(tmp_path_factory.mktemp("s3-node") / "data").start()
    try:
        yield server
    finally:
        server.stop()


def invocations(server: Server) -> list[dict[str, Any]]:
    with server.client() as api:
        response = api.get(
            "/v1/invocations", params={"function": FUNCTION, "logs": "true", "limit": 50}
        )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["invocations"]
    return items


def test_upload_runs_the_node_function_and_its_log_shows_the_decoded_key(
    server: Server,
) -> None:
    deployed = server.cli("deploy", str(EXAMPLE), "--json", check=True)
    assert FUNCTION in deployed.stdout
    key = json.loads(
        server.cli("keys", "create", "--name", "uploader", "--json", check=True).stdout
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
        region_name="us-east-1",
    )
    s3.put_object(Bucket="uploads", Key="reports/Q3 résumé (final).csv", Body=b"a,b\n1,2\n")

    expected = "Processing file reports/Q3 résumé (final).csv from bucket uploads"
    [invocation] = wait_for(
        lambda: [i for i in invocations(server) if expected in (i.get("logs") or "")],
        timeout=60,
        what="the function's log line",
    )
    assert invocation["status"] == "ok"
    logs = invocation["logs"]
    assert "\tINFO\tReceived event: {" in logs
    assert '"eventName": "ObjectCreated:Put"' in logs
    assert '"key": "reports/Q3+r%C3%A9sum%C3%A9+%28final%29.csv"' in logs
    # `triggerfish logs` shows the same line.
    shown = server.cli("logs", FUNCTION, check=True).stdout
    assert expected in shown

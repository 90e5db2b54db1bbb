"""Node.js functions written for Lambda reach the node's S3 and Lambda APIs unchanged,
on a running server: with aws-sdk v2 from their own package.json (which reads no
endpoint from the environment), and with the AWS SDK v3 bundle they do not declare."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from support.node_packages import require_aws_sdk_v2, require_sdk_bundle
from support.server import ROOT, Server

pytestmark = pytest.mark.e2e

BUCKET = "sdk-files"
EXAMPLE = ROOT / "examples" / "s3-node" / "process-upload"

# Callback style throughout, as v2 code often is; the clients are made at init.
LEGACY = """
const AWS = require('aws-sdk');
const s3 = new AWS.S3();
const lambda = new AWS.Lambda();

exports.handler = function (event, context, callback) {
  const Key = `legacy/${event.name}.txt`;
  s3.putObject({ Bucket: 'sdk-files', Key, Body: `hello ${event.name}` }, (error) => {
    if (error) return callback(error);
    s3.getObject({ Bucket: 'sdk-files', Key }, (error, object) => {
      if (error) return callback(error);
      const Payload = JSON.stringify({ from: 'legacy' });
      lambda.invoke({ FunctionName: 'echo', Payload }, (error, reply) => {
        if (error) return callback(error);
        callback(null, { body: object.Body.toString(), echo: JSON.parse(reply.Payload) });
      });
    });
  });
};
"""

MODERN = """
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';

const s3 = new S3Client({});
const lambda = new LambdaClient({});

export const handler = async (event) => {
  const Key = `modern/${event.name}.txt`;
  await s3.send(new PutObjectCommand({ Bucket: 'sdk-files', Key, Body: `hi ${event.name}` }));
  const object = await s3.send(new GetObjectCommand({ Bucket: 'sdk-files', Key }));
  const Payload = JSON.stringify({ from: 'modern' });
  const reply = await lambda.send(new InvokeCommand({ FunctionName: 'echo', Payload }));
  return {
    body: await object.Body.transformToString(),
    echo: JSON.parse(Buffer.from(reply.Payload).toString()),
  };
};
"""

ECHO = "exports.handler = async (event) => ({ echoed: event });\n"


def project(root: Path) -> Path:
    (root / "legacy").mkdir(parents=True)
    (root / "legacy" / "index.js").write_text(LEGACY)
    for name in ("package.json", "package-lock.json"):  # aws-sdk 2.1693.0
        shutil.copyfile(EXAMPLE / name, root / "legacy" / name)
    (root / "modern").mkdir()
    (root / "modern" / "index.mjs").write_text(MODERN)
    (root / "echo").mkdir()
    (root / "echo" / "index.js").write_text(ECHO)
    grants = {"buckets": {"write": [BUCKET], "read": [BUCKET]}, "invoke": ["echo"]}
    node = {"handler": "index.handler", "runtime": "nodejs", "timeout": 30}
    manifest = {
        "functions": {
            "legacy": {**node, "code": "./legacy", "permissions": grants},
            "modern": {**node, "code": "./modern", "permissions": grants},
            "echo": {**node, "code": "./echo"},
        }
    }
    path = root / "triggerfish.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    sdk = require_sdk_bundle()
    npm_cache = require_aws_sdk_v2()
    root = tmp_path_factory.mktemp("node-sdks")
    env = {
        "TRIGGERFISH_NODE_SDK_DIR": str(sdk),
        # The deploy's `npm ci` of aws-sdk v2 from the cache install-node.sh filled.
        "npm_config_cache": str(npm_cache),
        "npm_config_prefer_offline": "true",
    }
    server = Server(root / "data", env=env).start()
    try:
        server.cli("deploy", str(project(root / "project")), "--json", check=True)
        s3(server).create_bucket(Bucket=BUCKET)
        yield server
    finally:
        server.stop()


def s3(server: Server) -> Any:
    key = json.loads(server.cli("keys", "create", "--name", "t", "--json", check=True).stdout)
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
        region_name="us-east-1",
    )


def invoke(server: Server, function: str, payload: dict[str, Any]) -> Any:
    with server.client(timeout=60.0) as api:
        response = api.post(
            f"/2015-03-31/functions/{function}/invocations",
            content=json.dumps(payload),
            headers={"X-Amz-Log-Type": "Tail"},
        )
    assert response.status_code == 200, response.text
    assert "X-Amz-Function-Error" not in response.headers, response.text
    return response.json()


def stored(server: Server, key: str) -> bytes:
    body: bytes = s3(server).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def test_aws_sdk_v2_reaches_the_nodes_s3_and_lambda_apis(server: Server) -> None:
    # The first call is a cold start, during which v2's end-of-support notice timer
    # (set at init) fires: the callback's answer must still be the result.
    first = invoke(server, "legacy", {"name": "ada"})
    assert first == {"body": "hello ada", "echo": {"echoed": {"from": "legacy"}}}
    assert stored(server, "legacy/ada.txt") == b"hello ada"
    again = invoke(server, "legacy", {"name": "bob"})
    assert again["body"] == "hello bob"
    assert stored(server, "legacy/bob.txt") == b"hello bob"


def test_the_sdk_v3_bundle_is_there_without_declaring_it(server: Server) -> None:
    result = invoke(server, "modern", {"name": "cy"})
    assert result == {"body": "hi cy", "echo": {"echoed": {"from": "modern"}}}
    assert stored(server, "modern/cy.txt") == b"hi cy"

"""Durable functions in Node.js: a handler written with AWS's Durable Execution SDK for
JavaScript (``@aws/durable-execution-sdk-js``), unmodified, checkpoints its steps and
waits through the same Lambda API as Python's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from support.node_packages import CACHE, NPM_CACHE, _missing, require_node
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

SDK = CACHE / "durable-sdk-js"

HANDLER = """
const { withDurableExecution } = require("@aws/durable-execution-sdk-js");

exports.handler = withDurableExecution(async (event, context) => {
  const greeting = await context.step("greet", async () => `hello ${event.name}`);
  await context.wait({ seconds: 1 });
  const loud = await context.step("shout", async () => greeting.toUpperCase());
  return { greeting, loud };
});
"""


def durable_sdk() -> Path:
    """The npm cache that holds the SDK (scripts/install-node.sh fills it)."""
    require_node()
    if not (SDK / "node_modules" / "@aws" / "durable-execution-sdk-js" / "package.json").is_file():
        _missing(f"@aws/durable-execution-sdk-js is not installed in {SDK}")
    return NPM_CACHE


def test_a_node_handler_steps_waits_and_completes(tmp_path: Path) -> None:
    npm_cache = durable_sdk()
    code = tmp_path / "project" / "js"
    code.mkdir(parents=True)
    (code / "index.js").write_text(HANDLER)
    package = {"name": "greeter-js", "dependencies": {"@aws/durable-execution-sdk-js": "2.4.0"}}
    (code / "package.json").write_text(json.dumps(package))
    manifest = tmp_path / "project" / "triggerfish.yaml"
    function = {
        "handler": "index.handler",
        "code": "./js",
        "runtime": "nodejs",
        "timeout": 30,
        "durable": {"execution_timeout": "1h", "retention": "1d"},
    }
    manifest.write_text(yaml.safe_dump({"functions": {"greeter-js": function}}))
    # The deploy's npm install of the SDK, from the cache install-node.sh filled.
    env = {"npm_config_cache": str(npm_cache), "npm_config_prefer_offline": "true"}
    server = Server(tmp_path / "data", env=env).start()
    try:
        server.cli("deploy", str(manifest), check=True)
        with server.client() as api:
            reply = api.post("/2015-03-31/functions/greeter-js/invocations", json={"name": "ana"})
            started = reply.json()
            assert started["Status"] == "RUNNING", started
            execution = started["DurableExecutionArn"].rsplit("/", 1)[-1]

            def ended() -> dict[str, object] | None:
                found: dict[str, object] = api.get(f"/v1/executions/{execution}").json()
                return found if found["status"] != "RUNNING" else None

            done = wait_for(ended, timeout=20, what="the execution to end")
    finally:
        server.stop()
    assert done["status"] == "SUCCEEDED", json.dumps(done)[:3000]
    assert json.loads(done["result"]) == {"greeting": "hello ana", "loud": "HELLO ANA"}
    steps = [op["name"] for op in done["operations"] if op["type"] == "STEP"]
    assert steps == ["greet", "shout"]

"""The AWS SDK v3 bundle of Node.js functions: found after a function's own packages,
from CommonJS and ES modules, named in the error when it is missing; and its install."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from support.node_packages import require_node, require_sdk_bundle
from support.results import ok_json
from triggerfish.errors import BuildError
from triggerfish.runtime.base import FunctionSpec, InvocationRequest
from triggerfish.runtime.executor import ProcessExecutor
from triggerfish.runtime.node.sdk import install_sdk, installed_modules, installed_versions

Request = Callable[..., InvocationRequest]

CJS = """
const { S3Client } = require('@aws-sdk/client-s3');
const { DynamoDBDocumentClient } = require('@aws-sdk/lib-dynamodb');
exports.handler = async () => ({
  client: typeof S3Client, document: typeof DynamoDBDocumentClient,
  from: require.resolve('@aws-sdk/client-s3'),
});
"""
ESM = """
import { S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
export const handler = async () => ({ client: typeof S3Client, presign: typeof getSignedUrl });
"""
KINESIS = """
const { KinesisClient } = require('@aws-sdk/client-kinesis');
exports.handler = async () => typeof KinesisClient;
"""


def function(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def spec(code: Path, handler: str) -> FunctionSpec:
    return FunctionSpec(
        "sdk-user", handler.replace(".", "-"), code, handler, runtime="nodejs", timeout=10.0
    )


@pytest.fixture
async def bundled(tmp_path: Path) -> AsyncIterator[ProcessExecutor]:
    runner = ProcessExecutor(work_dir=tmp_path / "run", node_sdk=require_sdk_bundle())
    await runner.start()
    yield runner
    await runner.stop(grace=1.0)


async def test_commonjs_and_es_modules_find_the_bundle(
    tmp_path: Path, bundled: ProcessExecutor, make_request: Request
) -> None:
    code = function(tmp_path / "code", {"common.js": CJS, "modern.mjs": ESM})
    common = ok_json(await bundled.invoke(spec(code, "common.handler"), make_request({})))
    assert (common["client"], common["document"]) == ("function", "function")
    assert common["from"].startswith(str(require_sdk_bundle()))
    modern = ok_json(await bundled.invoke(spec(code, "modern.handler"), make_request({})))
    assert modern == {"client": "function", "presign": "function"}


async def test_the_functions_own_copy_wins(
    tmp_path: Path, bundled: ProcessExecutor, make_request: Request
) -> None:
    own = {
        "node_modules/@aws-sdk/client-s3/package.json": json.dumps(
            {"name": "@aws-sdk/client-s3", "version": "3.0.0-own", "main": "index.js"}
        ),
        "node_modules/@aws-sdk/client-s3/index.js": "exports.S3Client = 'own copy';\n",
        "common.js": "exports.handler = async () => require('@aws-sdk/client-s3').S3Client;\n",
        "modern.mjs": "import s3 from '@aws-sdk/client-s3';\n"
        "export const handler = async () => s3.S3Client;\n",
    }
    code = function(tmp_path / "code", own)
    for handler in ("common.handler", "modern.handler"):
        assert ok_json(await bundled.invoke(spec(code, handler), make_request({}))) == "own copy"


async def test_a_missing_bundle_or_package_says_what_to_do(
    tmp_path: Path, bundled: ProcessExecutor, make_request: Request
) -> None:
    code = function(tmp_path / "code", {"common.js": CJS, "kinesis.js": KINESIS})
    outside = await bundled.invoke(spec(code, "kinesis.handler"), make_request({}))
    assert outside.error_type == "Runtime.ImportModuleError"
    assert "@aws-sdk/client-kinesis is not in the AWS SDK v3 bundle" in (
        outside.error_message or ""
    )
    without = ProcessExecutor(work_dir=tmp_path / "bare", node_sdk=tmp_path / "nothing")
    await without.start()
    try:
        result = await without.invoke(spec(code, "common.handler"), make_request({}))
    finally:
        await without.stop(grace=1.0)
    assert result.error_type == "Runtime.ImportModuleError"
    assert "Cannot find module '@aws-sdk/client-s3'" in (result.error_message or "")
    assert "run `triggerfish runtimes install-sdk`" in (result.error_message or "")


def test_install_swaps_in_a_complete_install_and_keeps_it_when_npm_fails(
    tmp_path: Path,
) -> None:
    require_node()
    folder = tmp_path / "runtimes" / "nodejs-sdk"
    lines: list[str] = []
    versions = install_sdk(folder, version="7.0.0", packages=("is-number",), output=lines.append)
    assert versions == {"is-number": "7.0.0"}
    assert installed_versions(folder) == versions
    assert installed_modules(folder) == folder / "node_modules"
    assert (folder / "node_modules" / "is-number" / "index.js").is_file()
    with pytest.raises(BuildError, match=r"npm install of the AWS SDK \(99\.99\.99\) failed"):
        install_sdk(folder, version="99.99.99", packages=("is-number",))
    assert installed_versions(folder) == versions  # the earlier install is still whole
    assert sorted(path.name for path in folder.parent.iterdir()) == ["nodejs-sdk"]

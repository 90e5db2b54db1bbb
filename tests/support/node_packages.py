"""npm packages the Node.js tests use, installed ahead by scripts/install-node.sh (run
by `make test`) into a cache of the checkout: the node's AWS SDK v3 bundle, and the
npm cache holding aws-sdk v2 of examples/s3-node for functions that declare it. A test
that needs one skips with the reason on a developer's machine, and fails in CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support.server import ROOT
from support.services import in_ci
from triggerfish.runtime.node.sdk import installed_modules

CACHE = Path(os.environ.get("TRIGGERFISH_NODE_CACHE", ROOT / ".cache" / "node"))
SDK = CACHE / "sdk"
NPM_CACHE = CACHE / "npm"
AWS_SDK_V2 = CACHE / "aws-sdk-v2"


def _missing(message: str) -> None:
    message += " (scripts/install-node.sh installs it)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_node() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        _missing("Node.js and npm are not installed")


def require_sdk_bundle() -> Path:
    """The folder of the AWS SDK v3 bundle of the tests."""
    require_node()
    if installed_modules(SDK) is None:
        _missing(f"the AWS SDK v3 bundle is not installed in {SDK}")
    return SDK


def require_aws_sdk_v2() -> Path:
    """The npm cache that holds aws-sdk v2 (its package-lock.json is examples/s3-node's)."""
    require_node()
    if not (AWS_SDK_V2 / "node_modules" / "aws-sdk" / "package.json").is_file():
        _missing(f"aws-sdk v2 is not installed in {AWS_SDK_V2}")
    return NPM_CACHE

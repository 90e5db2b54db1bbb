"""Sample services of the Serverless Framework as their npm packages ship them (the
``serverless`` package's ``create`` templates, serverless-offline-aws-eventbridge's
examples), unpacked by scripts/install-node.sh, as test data for ``triggerfish deploy
serverless.yml``. A test that needs one skips with the reason on a developer's machine,
and fails in CI."""

from __future__ import annotations

import shutil
from pathlib import Path

from support.node_packages import CACHE, _missing

SAMPLES = CACHE / "serverless-samples"
TEMPLATES = "serverless/package/lib/plugins/create/templates"
EVENTBRIDGE = "serverless-offline-aws-eventbridge/package/examples/python"


def serverless_sample(relative: str, dest: Path) -> Path:
    """A copy in ``dest`` of the sample service folder ``relative`` (under the unpacked
    packages: ``TEMPLATES + "/aws-python3"``), as its package ships it."""
    source = SAMPLES / relative
    if not (source / "serverless.yml").is_file():
        _missing(f"the Serverless Framework sample {relative} is not unpacked in {SAMPLES}")
    target = dest / source.name
    shutil.copytree(source, target)
    return target

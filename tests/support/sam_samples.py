"""The AWS SAM CLI's own sample apps (its ``sam init`` templates), rendered as ``sam
init`` renders them with their defaults, as test data for ``triggerfish deploy
template.yaml``. They come from the installed ``aws-sam-cli`` package
(``make install-samples``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest


def sam_sample(name: str, dest: Path) -> Path:
    """The folder of the sample app ``name`` (``hello-python``, ``hello-nodejs``), rendered
    into ``dest``; skips when aws-sam-cli is not installed (fails in CI)."""
    try:
        import jinja2
        import samcli  # type: ignore[import-untyped]
    except ImportError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(
            f"the AWS SAM CLI's sample apps are not installed ({exc}): make install-samples"
        )
    root = Path(samcli.__file__).parent / "lib/init/templates" / f"cookiecutter-aws-sam-{name}"
    context = {
        key: value
        for key, value in json.loads((root / "cookiecutter.json").read_text()).items()
        if not key.startswith("_")
    }
    context["project_name"] = "sam-app"
    environment = jinja2.Environment(keep_trailing_newline=True)
    source = root / "{{cookiecutter.project_name}}"
    out = dest / "sam-app"
    for file in source.rglob("*"):
        target = out / file.relative_to(source)
        if file.is_dir():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            shutil.copy(file, target)
            continue
        target.write_text(environment.from_string(text).render(cookiecutter=context))
    return out

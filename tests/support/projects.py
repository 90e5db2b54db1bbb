"""Write small function projects (code + triggerfish.yaml) for tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml


def write_project(
    root: Path,
    functions: dict[str, tuple[str, dict[str, Any]]],
    *,
    topics: dict[str, Any] | None = None,
) -> Path:
    """``functions``: name -> (source of main.py, settings). Returns the manifest path."""
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"functions": {}}
    if topics:
        manifest["topics"] = topics
    for name, (source, settings) in functions.items():
        code = root / name
        code.mkdir(exist_ok=True)
        (code / "main.py").write_text(textwrap.dedent(source))
        manifest["functions"][name] = {"handler": "main.handler", "code": f"./{name}", **settings}
    path = root / "triggerfish.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def json_lines(path: Path) -> list[Any]:
    """The JSON documents a test function appended to ``path``, one a line; none yet
    when it does not exist."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def s3_keys(events: list[Any]) -> list[str]:
    """The object keys of the S3 notifications (Lambda's ``Records`` shape) among the
    ``events`` a function wrote down, in order."""
    return [
        event["Records"][0]["s3"]["object"]["key"]
        for event in events
        if (event.get("Records") or [{}])[0].get("eventSource") == "aws:s3"
    ]

"""Every YAML example in docs/ is one that ``triggerfish deploy`` accepts.

Each ```yaml block of docs/*.md is checked with the manifest's own parser: a whole
manifest as it is, one without ``functions`` (only topics, webhooks or brokers) with an
empty ``functions``, and a piece of a function's settings (``triggers:`` ...) inside a
function. A block that is none of these, or that holds placeholders, is preceded by the
line ``<!-- not a manifest -->`` and is left out; any other block that is not a mapping
of known keys fails here, so an example cannot drift from what deploy accepts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from triggerfish.functions.manifest import FunctionConfig, Manifest, parse_manifest

DOCS = Path(__file__).resolve().parents[3] / "docs"
SKIP = "<!-- not a manifest -->"
BLOCK = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def yaml_blocks() -> list[Any]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
            marks = [pytest.mark.skip(reason="marked: not a manifest")] if before == SKIP else []
            where = f"docs/{path.name}:{line}"
            found.append(pytest.param(where, match.group(1), id=where, marks=marks))
    return found


def as_manifest(document: Any) -> dict[str, Any] | None:
    """The block as a whole manifest, or None when it is not one or a piece of one."""
    if not isinstance(document, dict) or not document:
        return None
    keys = set(document)
    if keys <= set(Manifest.model_fields):
        return {"functions": {}, **document}
    if keys <= set(FunctionConfig.model_fields) - {"handler"}:
        return {"functions": {"example": {"handler": "main.handler", **document}}}
    return None


BLOCKS = yaml_blocks()


def test_the_docs_have_yaml_examples_to_check() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("where", "text"), BLOCKS)
def test_a_yaml_example_of_the_docs_is_a_valid_manifest(where: str, text: str) -> None:
    manifest = as_manifest(yaml.safe_load(text))
    assert manifest is not None, (
        "this block is neither a manifest nor a piece of a function's settings; "
        f"if it is meant to be something else, put the line {SKIP} before it"
    )
    parse_manifest(yaml.safe_dump(manifest), Path(where))  # ConfigError names the key

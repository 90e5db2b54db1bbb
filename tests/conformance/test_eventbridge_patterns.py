"""Every recorded AWS EventBridge pattern case, run in place from the shared folder.

File names carry the expected outcome: no suffix matches, ``_NEG`` does not match,
``_EXC`` is rejected as invalid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import json5
import pytest

from triggerfish.errors import PatternError
from triggerfish.patterns import compile

CASES = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "conformance"
    / ("eventbridge-patterns")
    / "cases"
)

# AWS rejects this one for a limit of its service (how many wildcards a rule may hold),
# not for the pattern language; Triggerfish's wildcard matching has no such limit.
SERVICE_LIMIT_ONLY = {"content_wildcard_complex_EXC"}


def _case_files() -> list[Path]:
    if not CASES.is_dir():
        return []
    return sorted(CASES.glob("*.json5"))


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json5.loads(path.read_text(encoding="utf-8"))
    return case


@pytest.fixture(autouse=True)
def _require_cases() -> None:
    if not CASES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"conformance cases missing at {CASES}")
        pytest.skip(f"conformance cases not found at {CASES}")


def _params() -> list[Any]:
    params = []
    for path in _case_files():
        marks = []
        if path.stem in SERVICE_LIMIT_ONLY:
            marks.append(
                pytest.mark.xfail(
                    reason="AWS service limit on wildcard complexity, not a language rule",
                    strict=True,
                )
            )
        params.append(pytest.param(path, id=path.stem, marks=marks))
    if not params:
        params.append(pytest.param(None, id="no-cases"))
    return params


@pytest.mark.parametrize("path", _params())
def test_case(path: Path | None) -> None:
    assert path is not None
    case = _load(path)
    pattern, event = case["EventPattern"], case["Event"]
    if path.stem.endswith("_EXC"):
        with pytest.raises(PatternError) as info:
            compile(pattern)
        assert str(info.value)
        return
    expected = not path.stem.endswith("_NEG")
    assert compile(pattern).matches(event) is expected


def test_counts_are_complete() -> None:
    stems = [p.stem for p in _case_files()]
    assert sum(s.endswith("_EXC") for s in stems) == 38
    assert sum(s.endswith("_NEG") for s in stems) == 51
    assert sum(not s.endswith(("_EXC", "_NEG")) for s in stems) == 66


def test_complex_multi_key_pair_matches() -> None:
    pattern = (CASES / "complex_multi_key_event_pattern.json").read_text(encoding="utf-8")
    event = json5.loads((CASES / "complex_multi_key_event.json").read_text(encoding="utf-8"))
    assert compile(pattern).matches(event)
    assert compile(json5.loads(pattern)).matches(event)

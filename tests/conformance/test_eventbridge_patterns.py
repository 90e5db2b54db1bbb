"""Every recorded AWS EventBridge pattern case, run in place from the shared folder.

File names carry the expected outcome: no suffix matches, ``_NEG`` does not match,
``_EXC`` is rejected as invalid, and the refusal gives AWS's reason (recorded in
``aws-error-snapshot.json``) word for word, after the field path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import json5
import pytest

from triggerfish.errors import PatternError
from triggerfish.patterns import compile

FOLDER = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
CASES = FOLDER / "eventbridge-patterns" / "cases"
SNAPSHOT = FOLDER / "eventbridge-patterns" / "aws-error-snapshot.json"

# Cases whose message keeps only a key phrase of AWS's reason, each with why.
DELIBERATE_DIFFERENCES = {
    # AWS answers "prefix match pattern must be a string" for a cidr operand that is not
    # a string, naming an operator the pattern does not use; Triggerfish names "cidr".
    "content_ip_address_type_EXC": "match pattern must be a string",
}


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
    params = [pytest.param(path, id=path.stem) for path in _case_files()]
    if not params:
        params.append(pytest.param(None, id="no-cases"))
    return params


def _aws_reasons() -> dict[str, str]:
    """AWS's reason for each refused case: its message after "Reason: "."""
    snapshot: dict[str, Any] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    reasons = {}
    for record in snapshot.values():
        for name, content in record.get("recorded-content", {}).items():
            if isinstance(content, dict) and "exception_message" in content:
                message: str = content["exception_message"]["Error"]["Message"]
                reasons[name] = message.split("Reason: ", 1)[1]
    return reasons


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


@pytest.mark.parametrize(
    "path", [p for p in _params() if p.values[0] is None or p.id.endswith("_EXC")]
)
def test_refusal_gives_aws_reason(path: Path | None) -> None:
    assert path is not None
    reason = _aws_reasons()[path.stem]
    with pytest.raises(PatternError) as info:
        compile(_load(path)["EventPattern"])
    message = str(info.value)
    expected = DELIBERATE_DIFFERENCES.get(path.stem, reason)
    assert expected in message
    # The path of the faulty field comes first, so the user knows where to look.
    assert info.value.field is not None
    assert message.startswith(f"{info.value.field}: ")


def test_every_refused_case_has_a_recorded_reason() -> None:
    refused = {p.stem for p in _case_files() if p.stem.endswith("_EXC")}
    assert refused <= set(_aws_reasons())
    assert set(DELIBERATE_DIFFERENCES) <= refused

"""The CloudEvents conformance cases, read in place from shared/conformance/cloudevents.

Each YAML document describes one event and how it travels over HTTP. The request is
built as the cases' README says, given to ``parse_http``, and every attribute,
extension and the data must come out as they went in. Each case also runs in the
other content mode, which must keep the same event.
"""

from __future__ import annotations

import json
import os
import textwrap
from typing import Any

import pytest
import yaml

from support.cloudevents_cases import (
    CASES_DIR,
    CONFORMANCE,
    binary_request,
    load_cases,
    split,
    structured_request,
)
from triggerfish.events.http import parse_http
from triggerfish.events.model import is_json_content_type


@pytest.mark.parametrize(("document", "mode"), load_cases())
def test_conformance_case_keeps_the_whole_event(document: dict[str, Any] | None, mode: str) -> None:
    if document is None:
        reason = f"CloudEvents conformance data not found at {CASES_DIR}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    build = binary_request if mode == "binary" else structured_request
    headers, body = build(document)

    (event,) = parse_http(headers, body)

    attributes, extensions = split(document)
    assert event.specversion == attributes["specversion"]
    assert event.id == attributes["id"]
    assert event.source == attributes["source"]
    assert event.type == attributes["type"]
    for name in ("subject", "time", "datacontenttype", "dataschema"):
        assert getattr(event, name) == attributes.get(name), name
    assert event.extensions == extensions
    data = document.get("Data")
    if data is None:
        assert event.data is None
    elif mode == "binary" or not is_json_content_type(event.datacontenttype):
        assert event.data == data.encode("utf-8")
    else:
        assert event.data is not None
        assert json.loads(event.data) == json.loads(data)


def test_conformance_cases_are_all_found() -> None:
    if not CASES_DIR.is_dir():
        pytest.skip(f"CloudEvents conformance data not found at {CASES_DIR}")
    documents = 0
    for path in CASES_DIR.rglob("*.yaml"):
        with path.open(encoding="utf-8") as handle:
            documents += sum(1 for doc in yaml.load_all(handle, Loader=yaml.BaseLoader) if doc)
    # The README lists 6 minimal cases and 2 with extensions.
    assert documents >= 8


FEATURE = CONFORMANCE / "cloudevents" / "features" / "http-protocol-binding.feature"


def _table(lines: list[str]) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def _feature_cases() -> list[Any]:
    """Each Scenario Outline x Examples row: (raw HTTP request, attributes, data JSON)."""
    if not FEATURE.is_file():
        return [pytest.param(None, None, None, id="conformance-data-missing")]
    cases: list[Any] = []
    text = FEATURE.read_text(encoding="utf-8")
    for number, scenario in enumerate(text.split("Scenario Outline:")[1:]):
        blocks = [textwrap.dedent(b).strip("\n") for b in scenario.split('"""')[1::2]]
        request, data = blocks[0], blocks[1]
        lines = scenario.splitlines()
        table_rows = [line for line in lines if line.strip().startswith("|")]
        # The attribute table has two columns (after its "key | value" header); the
        # Examples table has one.
        attributes = {
            row[0]: row[1] for row in _table(table_rows) if len(row) == 2 and row[0] != "key"
        }
        examples_at = next(i for i, line in enumerate(lines) if "Examples:" in line)
        example_rows = _table([ln for ln in lines[examples_at:] if ln.strip().startswith("|")])
        names = example_rows[0]
        for row in example_rows[1:]:
            values = dict(zip(names, row, strict=True))
            filled_request, filled_attributes = request, dict(attributes)
            for key, value in values.items():
                filled_request = filled_request.replace(f"<{key}>", value)
                filled_attributes = {
                    k: v.replace(f"<{key}>", value) for k, v in filled_attributes.items()
                }
            cases.append(
                pytest.param(
                    filled_request,
                    filled_attributes,
                    data,
                    id=f"feature-{number}-{values.get('contentType', row[0])}",
                )
            )
    return cases


@pytest.mark.parametrize(("request_text", "attributes", "data"), _feature_cases())
def test_feature_case_parses_as_described(
    request_text: str | None, attributes: dict[str, str] | None, data: str | None
) -> None:
    if request_text is None or attributes is None or data is None:
        reason = f"CloudEvents conformance feature not found at {FEATURE}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    head, _, body = request_text.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.splitlines()[1:]:
        name, _, value = line.partition(":")
        if name.lower() != "content-length":  # the lengths in the feature are approximate
            headers[name.strip()] = value.strip()

    (event,) = parse_http(headers, body.encode("utf-8"))

    assert {name: getattr(event, name) for name in attributes} == attributes
    assert event.extensions == {}
    assert event.data is not None
    assert json.loads(event.data) == json.loads(data)

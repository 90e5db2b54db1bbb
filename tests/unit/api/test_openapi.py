"""The OpenAPI document declares the errors the API answers, in the shape it answers
them, and the bounds of the numbers it takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from triggerfish.api.app import create_app
from triggerfish.config import load_settings
from triggerfish.node import Node

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
LAMBDA_REF = {"$ref": "#/components/schemas/LambdaErrorDocument"}


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    node = Node(load_settings({"data_dir": tmp_path}, environ={}, cwd=tmp_path))
    return create_app(node, manage_node=False).openapi()


def operations(document: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        if path.startswith(prefix)
        for method, operation in item.items()
    ]


def test_every_v1_operation_declares_its_errors_as_problem_documents(
    document: dict[str, Any],
) -> None:
    found = operations(document, "/v1/")
    assert len(found) > 40
    for label, operation in found:
        for status in ("400", "401", "403", "404", "409", "413", "429", "431", "503"):
            content = operation["responses"][status]["content"]
            assert content == {"application/problem+json": {"schema": PROBLEM_REF}}, label
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail"]


def test_lambda_operations_declare_lambdas_error_document(document: dict[str, Any]) -> None:
    for label, operation in operations(document, "/2015-03-31/"):
        for status in ("400", "403", "404", "409", "413", "429"):
            answer = operation["responses"][status]
            assert answer["content"] == {"application/json": {"schema": LAMBDA_REF}}, label
            assert "x-amzn-ErrorType" in answer["headers"], label
        assert "401" not in operation["responses"], label  # Lambda says 403
    assert "LambdaErrorDocument" in document["components"]["schemas"]


def test_no_operation_declares_fastapis_422_which_the_api_never_answers(
    document: dict[str, Any],
) -> None:
    for label, operation in operations(document, "/"):
        assert "422" not in operation["responses"], label
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_numbers_declare_the_bounds_the_store_holds(document: dict[str, Any]) -> None:
    read = document["paths"]["/v1/topics/{topic}/events"]["get"]
    schemas = {p["name"]: p["schema"] for p in read["parameters"]}
    assert schemas["after"]["minimum"] == 0
    assert schemas["after"]["maximum"] == 2**63 - 1
    assert schemas["limit"]["minimum"] == 1
    since = schemas["since"]["anyOf"][0]
    assert since["type"] == "number"
    assert since["maximum"] == 253_402_300_799

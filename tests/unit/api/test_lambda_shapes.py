"""Lambda function names and qualifiers, FunctionConfiguration shapes, list paging."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from starlette.requests import Request

from triggerfish.api.lambda_.errors import LambdaError
from triggerfish.api.lambda_.routes import Item, page
from triggerfish.api.lambda_.shapes import configuration, function_arn, split_name
from triggerfish.store.records import VersionRecord


@pytest.mark.parametrize(
    ("name", "qualifier", "expected"),
    [
        ("orders", None, ("orders", None)),
        ("orders", "live", ("orders", "live")),
        ("orders:stable", None, ("orders", "stable")),
        ("orders:3", "3", ("orders", "3")),
        ("orders:$LATEST", None, ("orders", "$LATEST")),
        ("arn:aws:lambda:us-east-1:123456789012:function:orders", None, ("orders", None)),
        ("arn:aws:lambda:eu-west-3:000000000000:function:orders:7", None, ("orders", "7")),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:orders", "v", ("orders", "v")),
        ("123456789012:function:orders:stable", None, ("orders", "stable")),
    ],
)
def test_names_arns_and_qualifiers(
    name: str, qualifier: str | None, expected: tuple[str, str | None]
) -> None:
    assert split_name(name, qualifier) == expected


@pytest.mark.parametrize(
    ("name", "qualifier"),
    [("orders:1", "2"), ("arn:aws:lambda:us-east-1:1:function:orders:a", "b"), ("a:b:c", None)],
)
def test_conflicting_or_malformed_names_are_invalid_parameters(
    name: str, qualifier: str | None
) -> None:
    with pytest.raises(LambdaError) as caught:
        split_name(name, qualifier)
    assert caught.value.status == 400
    assert caught.value.code == "InvalidParameterValueException"


def version(number: int, **config: Any) -> VersionRecord:
    digest = hashlib.sha256(f"code {number}".encode()).hexdigest()
    return VersionRecord(
        function="orders",
        version=digest[:12],
        number=number,
        digest=digest,
        config={"handler": "main.handler", "runtime": "python3.12", **config},
        created_at=1_700_000_000.5,
    )


def test_configuration_reads_like_lambdas() -> None:
    v = version(3, memory=512, timeout=2.5, environment={"STAGE": "prod"}, snapstart=True)
    shape = configuration(v, qualifier="stable", code_size=1234)
    assert shape["FunctionName"] == "orders"
    assert shape["FunctionArn"] == function_arn("orders", "stable")
    assert shape["FunctionArn"].endswith(":function:orders:stable")
    assert shape["Version"] == "3"
    assert shape["Runtime"] == "python3.12"
    assert shape["Handler"] == "main.handler"
    assert shape["MemorySize"] == 512
    assert shape["Timeout"] == 3  # whole seconds, rounded up
    assert shape["CodeSize"] == 1234
    assert base64.b64decode(shape["CodeSha256"]).hex() == v.digest
    assert shape["LastModified"] == "2023-11-14T22:13:20.500+0000"
    assert shape["Environment"] == {"Variables": {"STAGE": "prod"}}
    assert shape["State"] == "Active"
    assert shape["SnapStart"]["ApplyOn"] == "PublishedVersions"
    latest = configuration(v, qualifier="$LATEST", label="$LATEST")
    assert latest["Version"] == "$LATEST"
    assert "Environment" not in configuration(version(1))


def test_logging_config_reads_the_manifests_logging() -> None:
    text = configuration(version(1))["LoggingConfig"]
    assert text == {"LogFormat": "Text", "LogGroup": "/aws/lambda/orders"}
    as_json = version(2, logging={"format": "json", "level": "debug", "system_level": "WARN"})
    assert configuration(as_json)["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": "/aws/lambda/orders",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "WARN",
    }


def request_with(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "query_string": query.encode()})


def items(count: int) -> list[Item]:
    return [(("f", n), {"n": n}) for n in range(count)]


def test_paging_visits_every_item_once() -> None:
    seen: list[int] = []
    query = "MaxItems=2"
    for _ in range(10):
        found = page(items(5), request_with(query), "Things")
        seen += [item["n"] for item in found["Things"]]
        if "NextMarker" not in found:
            break
        query = f"MaxItems=2&Marker={found['NextMarker']}"
    assert seen == [0, 1, 2, 3, 4]
    assert page(items(3), request_with(""), "Things") == {"Things": [{"n": n} for n in range(3)]}


@pytest.mark.parametrize("query", ["MaxItems=0", "MaxItems=10001", "MaxItems=x", "Marker=%%%"])
def test_bad_paging_parameters_are_invalid(query: str) -> None:
    with pytest.raises(LambdaError) as caught:
        page(items(3), request_with(query), "Things")
    assert caught.value.code == "InvalidParameterValueException"

"""Schemathesis against a running `triggerfish up`, from the OpenAPI document it serves.

Every operation of ``/openapi.json`` gets a bounded number of generated requests, valid
and invalid ones, sent with the admin token; none may be answered 5xx, and each answer
must be one the document declares for that operation: its status, its content type, and
its body and headers where the document gives their schemas. The run is derandomized
(a fixed seed), so CI meets the same requests every time.

Schemathesis's own pytest integration (``schemathesis.pytest``) is not used: its lazy
schemas need pytest internals that pytest 9 no longer has, so each operation runs here
as a Hypothesis test of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err, Ok
from schemathesis.errors import FailureGroup
from schemathesis.schemas import BaseSchema

from support.projects import write_project
from support.server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = 25  # per operation
#: Operations that answer an endless event stream: any request they accept never ends
#: (and few requests are invalid for them), so they are left to
#: tests/e2e/test_invocation_stream.py, which reads the stream and its refusals.
STREAMS = frozenset({"/v1/invocations/stream"})
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
Operation = APIOperation[Any, Any, Any, Any]
ECHO = "def handler(event, context):\n    return {'echo': event}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A node with something behind the routes: a function, a topic, a signed webhook."""
    root = tmp_path_factory.mktemp("openapi-fuzz")
    manifest = write_project(
        root / "project",
        {"echo": (ECHO, {"triggers": [{"topic": "orders"}]})},
        topics={"orders": {}},
    )
    document = yaml.safe_load(manifest.read_text())
    document["webhooks"] = {"hook": {"topic": "orders", "secret": "webhook-secret-for-tests"}}
    manifest.write_text(yaml.safe_dump(document))
    server = Server(root / "data").start("--deploy", str(manifest))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(server: Server) -> BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "base-url": server.url,
            "headers": {"Authorization": f"Bearer {server.token}"},
            "request-timeout": 30,
        }
    )
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)


def deployed(operation: Operation) -> dict[str, str]:
    """Path parameters naming what the fixture deployed, so that generated requests
    also reach an existing function, topic and webhook, and their 2xx answers."""
    path = operation.path
    known = {"topic": "orders"} if "{topic}" in path else {}
    if "/functions/{name}" in path:
        known["name"] = "echo"
    elif path.startswith("/v1/webhooks/{name}"):
        known["name"] = "hook"
    return known


def failures_of(
    operation: Operation,
    mode: GenerationMode,
    statuses: Counter[int],
    *,
    path_parameters: dict[str, str] | None = None,
) -> str | None:
    """What the checks found for ``EXAMPLES`` cases of ``operation`` (the smallest
    failing case, once shrunk), or None; ``statuses`` counts the answers."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        # Each example is a request over the network, and negative ones are filtered.
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(operation.as_strategy(mode, path_parameters=path_parameters))
    def run(case: Case[Operation]) -> None:
        response = case.call(timeout=30)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    label = f"{operation.label} ({mode.value}{', deployed' if path_parameters else ''})"
    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        return None  # nothing of this operation's input can be made invalid
    except (AssertionError, FailureGroup) as exc:
        return f"{label}: {exc}"
    return None


# The timeout stops a hang; it is no promise. The thousands of requests take 75 to 130 s
# beside `make test`'s other workers on two cores, and over 300 s with a second suite
# running on the machine as well.
@pytest.mark.timeout(600)
def test_every_answer_is_documented_and_none_is_a_server_error(api_schema: BaseSchema) -> None:
    results = list(api_schema.get_all_operations())
    unreadable = [str(result.err()) for result in results if isinstance(result, Err)]
    assert not unreadable, "\n".join(unreadable)
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) > 40, "the document lost its operations"
    statuses: Counter[int] = Counter()
    found = []
    for operation in operations:
        if operation.path in STREAMS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            found.append(failures_of(operation, mode, statuses))
        known = deployed(operation)
        # Deleting what the fixture deployed would leave the rest nothing to reach.
        if known and operation.method.upper() != "DELETE":
            found.append(
                failures_of(operation, GenerationMode.POSITIVE, statuses, path_parameters=known)
            )
    failures = [failure for failure in found if failure is not None]
    assert not failures, "\n\n".join(failures)
    # Requests that all failed authentication would pass the checks above.
    assert sum(n for status, n in statuses.items() if status < 300) > 100, statuses


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("/v1/topics/orders/events?after=-29850819255937900040813543424", "after"),
        ("/v1/topics/orders/events?after=99999999999999999999", "after"),
        ("/v1/topics/orders/events?limit=-2634", "limit"),
        ("/v1/costs?until=1.7976931348623157e%2B308", "until"),
        ("/v1/costs?since=nan", "since"),
    ],
)
def test_a_number_out_of_bounds_is_refused_naming_the_parameter(
    server: Server, query: str, parameter: str
) -> None:
    """Found by the run above: all but the negative limit were answered 500 (an
    overflow in the store's driver), and that one lifted the cap on a page."""
    with server.client() as api:
        response = api.get(query)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f"query.{parameter}:" in response.json()["detail"]

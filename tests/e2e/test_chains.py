"""Following a chain: the orders example (`validate` emits `order.accepted`, which
`fulfil` handles) on a real node, read through `GET /v1/chains/{id}` and
`triggerfish trace`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import ROOT, Server, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("chains") / "data"
    server = Server(data).start("--deploy", str(ROOT / "examples" / "orders"))
    yield server
    server.stop()


def publish(server: Server, event_id: str, order: dict[str, Any]) -> None:
    server.cli(
        "publish", "orders", "--type", "order.created", "--source", "shop",
        "--data", json.dumps(order), "--id", event_id, check=True,
    )  # fmt: skip


def chain_of(server: Server, id: str) -> dict[str, Any]:
    with server.client() as api:
        response = api.get(f"/v1/chains/{id}")
    return response.json() if response.status_code == 200 else {}


def steps(chain: dict[str, Any]) -> dict[str, str]:
    return {n["function"]: n["status"] for n in chain.get("nodes", []) if n["kind"] == "invocation"}


def test_an_order_reads_as_one_chain_from_any_of_its_ids(server: Server) -> None:
    publish(server, "ord-1", {"id": "A-1", "customer": "ada", "items": [{"price": 5}]})

    chain = wait_for(
        lambda: (c := chain_of(server, "ord-1")) and steps(c) == {"validate": "ok", "fulfil": "ok"}
        and len(c["nodes"]) == 4 and c,
        what="both functions in the chain of ord-1",
    )  # fmt: skip

    assert chain["id"] == "ord-1"
    assert chain["correlation"] == "ord-1"
    assert chain["truncated"] is False
    by_kind = {(n["kind"], n.get("type") or n.get("function")): n for n in chain["nodes"]}
    created = by_kind["event", "order.created"]
    accepted = by_kind["event", "order.accepted"]
    validate = by_kind["invocation", "validate"]
    fulfil = by_kind["invocation", "fulfil"]
    assert created == {
        "kind": "event", "id": "ord-1", "topic": "orders", "type": "order.created",
        "source": "shop", "time": created["time"],
    }  # fmt: skip
    assert accepted["topic"] == "orders"
    assert accepted["source"] == "triggerfish://functions/validate"
    assert set(fulfil) == {
        *("kind", "id", "function", "version", "status", "duration_ms"),
        *("started_at", "cold_start", "attempt", "error_type"),
    }
    assert sorted((e["from"], e["to"]) for e in chain["edges"]) == sorted(
        [
            ("ord-1", validate["id"]),
            (validate["id"], accepted["id"]),
            (accepted["id"], fulfil["id"]),
        ]
    )
    # The same chain from the event in the middle and from either invocation.
    for other in (accepted["id"], validate["id"], fulfil["id"]):
        again = chain_of(server, other)
        assert again["id"] == other
        assert (again["correlation"], again["nodes"], again["edges"]) == (
            "ord-1",
            chain["nodes"],
            chain["edges"],
        )


def test_an_event_whose_handler_emits_nothing_is_a_chain_of_one_step(server: Server) -> None:
    server.cli(
        "publish", "orders", "--type", "order.accepted", "--source", "shop", "--id", "acc-1",
        "--data", json.dumps({"id": "B-1", "total": 3.0}), check=True,
    )  # fmt: skip

    chain = wait_for(
        lambda: (c := chain_of(server, "acc-1")) and steps(c) == {"fulfil": "ok"} and c,
        what="fulfil in the chain of acc-1",
    )

    event, invocation = chain["nodes"]
    assert (event["kind"], event["id"], event["topic"]) == ("event", "acc-1", "orders")
    assert chain["edges"] == [{"from": "acc-1", "to": invocation["id"]}]
    assert chain_of(server, invocation["id"])["nodes"] == chain["nodes"]


def test_trace_prints_the_chain_as_a_tree_and_the_api_answer_as_json(server: Server) -> None:
    publish(server, "ord-2", {"id": "B-2", "customer": "bo", "items": [{"price": 3}]})
    wait_for(lambda: steps(chain_of(server, "ord-2")).get("fulfil") == "ok", what="fulfil")

    tree = server.cli("trace", "ord-2", check=True).stdout
    lines = tree.splitlines()
    assert lines[0] == "chain ord-2"
    order = [
        next(i for i, line in enumerate(lines) if needle in line)
        for needle in ("order.created on orders", "validate:", "order.accepted", "fulfil:")
    ]
    assert order == sorted(order)  # each step below what caused it
    assert "2 invocation(s), 2 event(s)" in lines[-1]

    as_json = json.loads(server.cli("trace", "ord-2", "--json", check=True).stdout)
    assert as_json == chain_of(server, "ord-2")


def test_trace_marks_the_step_that_failed(server: Server) -> None:
    publish(server, "ord-3", {"id": "C-3", "items": [{"price": "free"}]})
    wait_for(lambda: steps(chain_of(server, "ord-3")).get("validate") == "error", what="failure")

    tree = server.cli("trace", "ord-3", check=True).stdout

    failed = next(line for line in tree.splitlines() if "validate:" in line)
    assert "x validate" in failed
    assert "error" in failed
    assert "TypeError" in failed
    assert "failed" in tree.splitlines()[-1]


def test_an_unknown_id_is_a_404_problem_and_exit_code_3(server: Server) -> None:
    with server.client() as api:
        response = api.get("/v1/chains/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "no-such-thing" in response.json()["detail"]

    result = server.cli("trace", "no-such-thing")
    assert result.returncode == 3
    assert "no-such-thing" in result.stderr


def test_chains_need_a_token(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/chains/ord-1", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401

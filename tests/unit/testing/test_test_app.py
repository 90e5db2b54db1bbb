"""``TestApp`` on the orders example: the chain of two functions, a rejected order, a
failing handler retried as the clock moves and then dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from triggerfish.context import Context
from triggerfish.errors import ConfigError, NotFoundError
from triggerfish.functions.manifest import Manifest, load_manifest
from triggerfish.testing import TestApp, test_app

ORDERS = Path(__file__).parents[3] / "examples" / "orders"
ORDER = {"id": "A-1", "customer": "ada", "items": [{"price": 12.5, "quantity": 2}]}


@pytest.fixture
def app() -> Iterator[TestApp]:
    yield from test_app(ORDERS)


def test_an_accepted_order_is_validated_then_shipped(app: TestApp) -> None:
    created = app.publish("orders", type="order.created", source="shop", data=ORDER)
    [validated] = app.invocations("validate")
    assert validated.status == "ok"
    assert validated.result == {"accepted": True, "total": 25.0}
    assert validated.event == created
    assert "order A-1 accepted" in validated.logs
    [accepted] = app.emitted("orders")
    assert accepted.type == "order.accepted"
    assert accepted.subject == "A-1"
    assert validated.emitted == (accepted,)
    [shipped] = app.invocations("fulfil")
    assert shipped.status == "ok"
    assert shipped.result == {"shipped": "A-1"}
    assert shipped.event == accepted
    assert "shipping order A-1 (total 25.0) for ada" in shipped.logs


def test_the_chain_links_each_event_to_the_one_that_caused_it(app: TestApp) -> None:
    created = app.publish("orders", type="order.created", data=ORDER)
    chain = app.chain(created)
    assert [e.type for e in chain] == ["order.created", "order.accepted"]
    accepted = chain[1]
    assert accepted.extensions["correlationid"] == created.id
    assert accepted.extensions["causationid"] == created.id
    [shipped] = app.invocations("fulfil")
    assert shipped.correlation == created.id
    assert f"correlation id: {created.id}" in shipped.logs


def test_a_rejected_order_is_not_shipped(app: TestApp) -> None:
    app.publish("orders", type="order.created", data={"id": "B-2", "items": []})
    [validated] = app.invocations("validate")
    assert validated.result == {
        "accepted": False,
        "problems": ["no items", "total must be positive"],
    }
    assert [e.type for e in app.emitted("orders")] == ["order.rejected"]
    assert app.invocations("fulfil") == []


def test_a_failing_handler_is_retried_as_the_clock_moves_then_dead_lettered(app: TestApp) -> None:
    # An accepted order without an id: fulfil fails (KeyError) on each of its 5 attempts.
    app.publish("orders", type="order.accepted", data={"total": 3})
    assert [i.attempt for i in app.invocations("fulfil")] == [1]
    assert app.dead_letters("orders-failed") == []
    app.advance(300)
    attempts = app.invocations("fulfil")
    assert [i.attempt for i in attempts] == [1, 2, 3, 4, 5]
    assert all(i.error is not None and i.error.type == "KeyError" for i in attempts)
    [letter] = app.dead_letters("orders-failed")
    assert letter.extensions["errorfunction"] == "fulfil"
    assert letter.extensions["errorreason"] == "gave up after 5 attempts"


def test_a_handler_can_be_replaced_for_a_test() -> None:
    def refuse(event: Any, context: Context) -> Any:
        raise RuntimeError("warehouse closed")

    with TestApp(ORDERS, handlers={"fulfil": refuse}) as app:
        app.publish("orders", type="order.created", data=ORDER)
        [shipped] = app.invocations("fulfil")
        assert shipped.error is not None
        assert shipped.error.message == "warehouse closed"
        assert shipped.error.stack_trace  # the handler's own frames


def test_a_direct_invoke_runs_the_function_once(app: TestApp) -> None:
    invocation = app.invoke("validate", {"data": ORDER})
    assert invocation.trigger is None
    assert invocation.result == {"accepted": True, "total": 25.0}
    assert [e.type for e in app.events("orders")] == ["order.accepted"]


def test_an_app_object_gives_its_manifest(tmp_path: Path) -> None:
    class Project:
        def manifest(self, root: Path) -> Manifest:
            return load_manifest(ORDERS)

    with TestApp(Project()) as app:
        app.publish("orders", type="order.created", data=ORDER)
        assert [i.function for i in app.invocations()] == ["validate", "fulfil"]


def test_mistakes_get_messages_that_say_what_to_fix(app: TestApp) -> None:
    with pytest.raises(NotFoundError, match=r"no topic .order. here \(topics: .*orders"):
        app.publish("order", type="order.created", data=ORDER)
    with pytest.raises(NotFoundError, match="no function named 'ship'"):
        app.invocations("ship")
    with pytest.raises(ConfigError, match="no function named 'ship'"):
        TestApp(ORDERS, handlers={"ship": lambda event, context: None})
    with pytest.raises(ConfigError, match=r"path of a triggerfish\.yaml"):
        TestApp(42)  # type: ignore[arg-type]


def test_importing_the_package_starts_nothing() -> None:
    import threading

    import triggerfish.testing  # noqa: F401

    assert not [t for t in threading.enumerate() if t.name == "triggerfish-testing"]

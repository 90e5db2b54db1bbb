"""The shop's pipeline run in this process as a server runs it: the real pattern
matching, retries and dead letters, on a clock the test moves."""

from app import app

from triggerfish.testing import TestApp

ORDER = {"id": "A-1", "customer": "ada", "items": [{"sku": "fin", "price": 12.5, "quantity": 2}]}


def test_an_accepted_order_is_shipped() -> None:
    with TestApp(app) as t:
        t.publish("orders", type="order.created", data=ORDER)
        [accepted] = t.invocations("accept")
        assert accepted.status == "ok"
        assert accepted.result == {"accepted": "A-1", "total": 25.0}
        [shipped] = t.invocations("ship")
        assert shipped.result == {"shipped": "A-1"}
        assert "shipping order A-1 to ada" in shipped.logs


def test_an_order_that_does_not_fit_the_model_is_dead_lettered_at_once() -> None:
    with TestApp(app) as t:
        t.publish("orders", type="order.created", data={"id": "B-2", "customer": "bo"})
        t.advance(3600)  # past every retry the trigger would make
        assert len(t.invocations("accept")) == 1  # not retried
        [letter] = t.dead_letters("orders-failed")
        assert letter.extensions["errortype"] == "InvalidEventError"
        assert "items" in letter.extensions["errormessage"]
        assert t.invocations("ship") == []


def test_a_failing_shipment_is_retried_with_backoff_then_ships() -> None:
    calls = []

    def flaky(event, context):
        calls.append(event["data"]["id"])
        if len(calls) < 3:
            raise RuntimeError("carrier unavailable")
        return {"shipped": event["data"]["id"]}

    with TestApp(app, handlers={"ship": flaky}) as t:
        t.publish("orders", type="order.created", data=ORDER)
        assert calls == ["A-1"]
        t.advance(60)
        assert calls == ["A-1", "A-1", "A-1"]
        assert [i.status for i in t.invocations("ship")] == ["error", "error", "ok"]
        assert t.dead_letters("orders-failed") == []


def test_one_customers_orders_ship_in_order() -> None:
    with TestApp(app) as t:
        for n in range(5):
            t.publish(
                "orders",
                type="order.created",
                data={**ORDER, "id": f"A-{n}"},
            )
        shipped = [i.result["shipped"] for i in t.invocations("ship")]
        assert shipped == [f"A-{n}" for n in range(5)]

"""``@idempotent`` and ``idempotent_function`` over ``MemoryRecords`` (the rules of the
node's store, in memory), with a clock the test moves: once per key, results given
back, failures released, deliveries in progress waited for, leases taken over."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from triggerfish import IdempotencyInProgress, idempotent, idempotent_function
from triggerfish.context import Context, set_current_context
from triggerfish.errors import ConfigError, ValidationError
from triggerfish.idempotency import Claim, MemoryRecords


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Watched(MemoryRecords):
    """``MemoryRecords`` that remember each claim's lease and status."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self.claims: list[tuple[float, str]] = []

    def claim(self, key: str, lease: float) -> Claim:
        found = super().claim(key, lease)
        self.claims.append((lease, found.status))
        return found


def cloud_event(id: str, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": id, "source": "shop", "type": "order.created", "data": data}


def context(seconds: float = 30.0) -> Context:
    return Context(aws_request_id="r", function_name="pay", deadline=time.monotonic() + seconds)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_key_runs_once_and_later_deliveries_get_the_first_result() -> None:
    runs: list[str] = []

    @idempotent(key="data.order_id", records=MemoryRecords())
    def handler(event: dict[str, Any], context: Context) -> dict[str, Any]:
        runs.append(event["id"])
        return {"charged": event["data"]["amount"], "by": event["id"]}

    first = handler(cloud_event("e-1", order_id="A-1", amount=12), context())
    again = handler(cloud_event("e-2", order_id="A-1", amount=99), context())
    other = handler(cloud_event("e-3", order_id="A-2", amount=5), context())

    assert runs == ["e-1", "e-3"]
    assert first == again == {"charged": 12, "by": "e-1"}
    assert other == {"charged": 5, "by": "e-3"}


def test_without_a_key_a_cloud_event_is_known_by_its_source_and_id() -> None:
    runs: list[Any] = []

    @idempotent(records=MemoryRecords())
    def handler(event: Any, context: Context) -> int:
        runs.append(event)
        return len(runs)

    assert handler(cloud_event("e-1", n=1), context()) == 1
    assert handler(cloud_event("e-1", n=2), context()) == 1  # a redelivery
    assert handler({**cloud_event("e-1"), "source": "elsewhere"}, context()) == 2
    # Any other payload is known by its content.
    assert handler({"Records": [{"s3": {"object": {"key": "a"}}}]}, context()) == 3
    assert handler({"Records": [{"s3": {"object": {"key": "a"}}}]}, context()) == 3
    assert handler({"Records": [{"s3": {"object": {"key": "b"}}}]}, context()) == 4


def test_a_key_may_be_a_function_of_the_event_and_replays_give_json_back() -> None:
    runs = 0

    @idempotent(key=lambda event: (event["tenant"], event["n"]), records=MemoryRecords())
    def handler(event: dict[str, Any], context: Context) -> tuple[int, str]:
        nonlocal runs
        runs += 1
        return (runs, "done")

    assert handler({"tenant": "acme", "n": 1}, context()) == (1, "done")
    # A stored result comes back as JSON gives it: a tuple as a list.
    replayed: Any = handler({"tenant": "acme", "n": 1}, context())
    assert replayed == [1, "done"]
    assert runs == 1


def test_a_handler_that_raises_releases_its_claim_so_a_retry_runs() -> None:
    attempts = 0

    @idempotent(key="data.order_id", records=MemoryRecords())
    def handler(event: dict[str, Any], context: Context) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("the payment service is down")
        return "paid"

    with pytest.raises(RuntimeError, match="payment service"):
        handler(cloud_event("e-1", order_id="A-1"), context())
    assert handler(cloud_event("e-1", order_id="A-1"), context()) == "paid"
    assert handler(cloud_event("e-1", order_id="A-1"), context()) == "paid"
    assert attempts == 2


def test_a_delivery_in_progress_is_waited_for_and_its_result_returned() -> None:
    records = Watched()
    release = threading.Event()
    runs = 0

    @idempotent(key="data.order_id", records=records)
    def handler(event: dict[str, Any], context: Context) -> str:
        nonlocal runs
        runs += 1
        release.wait(5)
        return f"paid by {event['id']}"

    answers: dict[str, Any] = {}
    first = threading.Thread(
        target=lambda: answers.update(first=handler(cloud_event("e-1", order_id="A"), context()))
    )
    first.start()
    wait_until(lambda: len(records.claims) == 1)
    second = threading.Thread(
        target=lambda: answers.update(second=handler(cloud_event("e-2", order_id="A"), context()))
    )
    second.start()
    wait_until(lambda: any(status == "in_progress" for _, status in records.claims))
    release.set()
    first.join(5)
    second.join(5)

    assert answers == {"first": "paid by e-1", "second": "paid by e-1"}
    assert runs == 1


def test_a_delivery_that_cannot_wait_raises_in_progress_for_a_retry() -> None:
    records = MemoryRecords()

    @idempotent(key="data.order_id", wait=0, records=records)
    def handler(event: dict[str, Any], context: Context) -> str:
        raise AssertionError("must not run while another delivery holds the key")

    # Keys are scoped by the decorated function's name.
    key = f"{handler.__qualname__}#A"
    assert records.claim(key, 30).status == "claimed"
    with pytest.raises(IdempotencyInProgress, match="still in progress") as raised:
        handler(cloud_event("e-2", order_id="A"), context())
    assert raised.value.key == key
    assert 0 < raised.value.retry_after <= 30


def test_the_claim_of_an_environment_that_died_is_taken_over_after_its_lease() -> None:
    clock = Clock()
    records = Watched(clock)
    runs = 0

    @idempotent(key="data.order_id", wait=0, records=records)
    def handler(event: dict[str, Any], context: Context) -> int:
        nonlocal runs
        runs += 1
        return runs

    # An environment claimed the key with a 10 s invocation left, then died.
    records.claim(f"{handler.__qualname__}#A", 10 + 5)
    with pytest.raises(IdempotencyInProgress):
        handler(cloud_event("e-1", order_id="A"), context(10))
    clock.now += 15
    assert handler(cloud_event("e-1", order_id="A"), context(10)) == 1
    # Each claim's lease is the rest of its invocation and a margin.
    assert all(14 < lease <= 15 for lease, _ in records.claims)


def test_results_expire() -> None:
    clock = Clock()
    runs = 0

    @idempotent(key="data.order_id", expires=60, records=MemoryRecords(clock=clock))
    def handler(event: dict[str, Any], context: Context) -> int:
        nonlocal runs
        runs += 1
        return runs

    assert handler(cloud_event("e-1", order_id="A"), context()) == 1
    clock.now += 59
    assert handler(cloud_event("e-1", order_id="A"), context()) == 1
    clock.now += 1
    assert handler(cloud_event("e-1", order_id="A"), context()) == 2


async def test_an_async_handler_runs_once_per_key() -> None:
    runs = 0

    @idempotent(key="data.order_id", records=MemoryRecords())
    async def handler(event: dict[str, Any], context: Context) -> int:
        nonlocal runs
        runs += 1
        return runs

    assert await handler(cloud_event("e-1", order_id="A"), context()) == 1
    assert await handler(cloud_event("e-2", order_id="A"), context()) == 1
    assert runs == 1


def test_a_function_inside_a_handler_runs_once_per_argument_key() -> None:
    records = MemoryRecords()
    charges: list[str] = []

    @idempotent_function(key="id", records=records)
    def charge(order: dict[str, Any], amount: int) -> str:
        charges.append(order["id"])
        return f"receipt {order['id']} {amount}"

    @idempotent_function(records=records)
    def notify(email: str) -> bool:
        charges.append(email)
        return True

    def handler(event: dict[str, Any], context: Context) -> list[Any]:
        return [charge(event["order"], 12), notify(event["email"])]

    set_current_context(context())
    try:
        event = {"order": {"id": "A"}, "email": "ada@example.com"}
        assert handler(event, context()) == ["receipt A 12", True]
        assert handler(event, context()) == ["receipt A 12", True]
    finally:
        set_current_context(None)
    assert charges == ["A", "ada@example.com"]


def test_decorated_functions_do_not_share_keys() -> None:
    records = MemoryRecords()

    @idempotent(key="n", records=records)
    def first(event: dict[str, Any], context: Context) -> str:
        return "first"

    @idempotent(key="n", records=records)
    def second(event: dict[str, Any], context: Context) -> str:
        return "second"

    assert (first({"n": 1}, context()), second({"n": 1}, context())) == ("first", "second")


def test_a_key_missing_from_the_event_is_named() -> None:
    @idempotent(key="data.order_id", records=MemoryRecords())
    def handler(event: dict[str, Any], context: Context) -> None:
        raise AssertionError("must not run without its key")

    with pytest.raises(ValidationError, match=r"'data\.order_id'.*no 'order_id'"):
        handler(cloud_event("e-1", total=3), context())
    with pytest.raises(ValidationError, match="is null"):
        handler(cloud_event("e-1", order_id=None), context())


def test_a_result_that_is_not_json_is_refused_and_its_claim_released() -> None:
    records = MemoryRecords()

    @idempotent(key="n", records=records)
    def handler(event: dict[str, Any], context: Context) -> object:
        return object() if event["bad"] else "ok"

    with pytest.raises(ValidationError, match="must return JSON"):
        handler({"n": 1, "bad": True}, context())
    assert handler({"n": 1, "bad": False}, context()) == "ok"


def test_bad_settings_are_refused_when_decorating() -> None:
    with pytest.raises(ValidationError, match="expires must be seconds"):
        idempotent(expires=0)
    with pytest.raises(ValidationError, match="key must be a dotted path"):
        idempotent(key=42)  # type: ignore[call-overload]


def test_outside_triggerfish_the_first_call_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)

    @idempotent
    def handler(event: Any, context: Context) -> None:
        raise AssertionError("must not run without its records")

    with pytest.raises(ConfigError, match=r"AWS_ENDPOINT_URL.*records=MemoryRecords\(\)"):
        handler(cloud_event("e-1"), context())

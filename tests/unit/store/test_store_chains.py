"""Chains of events and invocations, recorded through the recorder into a real store
(SQLite and PostgreSQL) and read back as graphs by the application layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.control.chains import Chains
from triggerfish.errors import NotFoundError
from triggerfish.observe.recorder import Recorder
from triggerfish.runtime.base import FunctionSpec, InvocationResult
from triggerfish.store import SqlStore, new_id
from triggerfish.store.records import ChainEvent

ROOT = "order-1"


def spec(function: str) -> FunctionSpec:
    return FunctionSpec(function=function, version="0123456789ab", code_dir=Path("."), handler="h")


def result(status: str = "ok", error_type: str | None = None) -> InvocationResult:
    return InvocationResult(
        request_id=new_id(),
        status=status,
        started_at=1_700_000_000.0,
        duration_ms=3.5,
        error_type=error_type,
    )


def event(id: str, topic: str, invocation: str | None = None) -> ChainEvent:
    return ChainEvent(
        correlation=ROOT,
        id=id,
        source="tests",
        topic=topic,
        type=f"{topic}.happened",
        time="2024-05-01T10:00:00Z",
        invocation=invocation,
    )


async def test_a_pipeline_reads_the_same_from_any_of_its_ids(store: SqlStore) -> None:
    recorder = Recorder(store)
    check, ship = result(), result("error", "ValueError")
    # The second step's record comes first: its record names the event it handled,
    # before the record of the step that emitted it.
    recorder.record(
        spec("ship"),
        ship,
        trigger="ship.t",
        event_ids=["checked-1"],
        attempt=2,
        request_bytes=10,
        correlation=ROOT,
        events=[event("checked-1", "checked")],
    )
    await recorder.flush()
    recorder.record(
        spec("check"),
        check,
        trigger="check.t",
        event_ids=[ROOT],
        attempt=1,
        request_bytes=10,
        correlation=ROOT,
        events=[event(ROOT, "orders"), event("checked-1", "checked", check.request_id)],
    )
    await recorder.flush()
    chains = Chains(store)

    for asked in (ROOT, "checked-1", check.request_id, ship.request_id):
        chain = await chains.get(asked)
        assert chain.id == asked
        assert chain.correlation == ROOT
        assert {e.id: e.topic for e in chain.events} == {ROOT: "orders", "checked-1": "checked"}
        assert {s.function: s.status for s in chain.steps} == {"check": "ok", "ship": "error"}
        assert sorted(chain.edges) == sorted(
            [
                (ROOT, check.request_id),
                (check.request_id, "checked-1"),
                ("checked-1", ship.request_id),
            ]
        )
        assert not chain.truncated
    failed = next(s for s in chain.steps if s.function == "ship")
    assert (failed.error_type, failed.attempt, failed.duration_ms) == ("ValueError", 2, 3.5)


async def test_a_long_chain_is_cut_at_the_limit(store: SqlStore) -> None:
    recorder = Recorder(store)
    for n in range(6):
        step = result()
        recorder.record(
            spec("fan"),
            step,
            trigger="fan.t",
            event_ids=[ROOT],
            attempt=1,
            request_bytes=1,
            correlation=ROOT,
            events=[event(ROOT, "orders"), event(f"out-{n}", "out", step.request_id)],
        )
    await recorder.flush()

    chain = await Chains(store).get(ROOT, limit=5)

    assert chain.truncated
    assert len(chain.events) + len(chain.steps) == 5
    ids = {e.id for e in chain.events} | {s.id for s in chain.steps}
    assert all(a in ids and b in ids for a, b in chain.edges)


async def test_an_invocation_of_no_chain_is_a_chain_of_one(store: SqlStore) -> None:
    recorder = Recorder(store)
    alone = result()
    recorder.record(spec("ping"), alone, trigger=None, event_ids=(), attempt=1, request_bytes=2)
    await recorder.flush()

    chain = await Chains(store).get(alone.request_id)

    assert chain.correlation is None
    assert [s.function for s in chain.steps] == ["ping"]
    assert chain.edges == []


async def test_an_unknown_id_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="no invocation and no event"):
        await Chains(store).get("nothing-here")


async def test_old_events_go_with_old_invocations(store: SqlStore) -> None:
    recorder = Recorder(store)
    recorder.record(
        spec("check"),
        result(),
        trigger="check.t",
        event_ids=[ROOT],
        attempt=1,
        request_bytes=1,
        correlation=ROOT,
        events=[event(ROOT, "orders")],
    )
    await recorder.flush()

    await store.delete_invocations(until=4_000_000_000.0)

    with pytest.raises(NotFoundError):
        await Chains(store).get(ROOT)


@pytest.mark.parametrize("first", [ROOT, new_id()], ids=["id-without-time", "triggerfish-id"])
async def test_a_sibling_that_emitted_nothing_is_in_its_events_chain(
    store: SqlStore, first: str
) -> None:
    """A lone first step names no chain in its record; it is found by its event, beside
    a sibling trigger's step that went on."""
    recorder = Recorder(store)
    went_on, lone = result(), result()
    lone.started_at = went_on.started_at = 4_000_000_000.0  # after any id's time
    root = ChainEvent(first, first, "tests", "orders", "orders.happened", "", None)
    out = ChainEvent(first, "out-1", "tests", "out", "out.happened", "", went_on.request_id)
    recorder.record(
        spec("check"), went_on, trigger="check.t", event_ids=[first], attempt=1,
        request_bytes=1, correlation=first, events=[root, out],
    )  # fmt: skip
    recorder.record(
        spec("audit"), lone, trigger="audit.t", event_ids=[first], attempt=1, request_bytes=1
    )
    await recorder.flush()

    for asked in (first, lone.request_id, went_on.request_id):
        chain = await Chains(store).get(asked)
        assert chain.correlation == first
        assert {s.function for s in chain.steps} == {"check", "audit"}
        assert (first, lone.request_id) in chain.edges


async def test_an_event_handled_only_by_lone_steps_is_found(store: SqlStore) -> None:
    recorder = Recorder(store)
    lone = result()
    # Characters that mean something to LIKE are matched as themselves.
    recorder.record(
        spec("audit"), lone, trigger="audit.t", event_ids=["50%_off"], attempt=1, request_bytes=1
    )
    await recorder.flush()

    chain = await Chains(store).get("50%_off")
    assert [s.id for s in chain.steps] == [lone.request_id]
    assert chain.edges == [("50%_off", lone.request_id)]
    with pytest.raises(NotFoundError):
        await Chains(store).get("50x_off")

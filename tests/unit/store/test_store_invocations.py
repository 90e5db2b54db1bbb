"""Invocation records and API tokens in a real SQLite file."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from triggerfish.errors import ConflictError, NotFoundError
from triggerfish.runtime.base import InvocationResult
from triggerfish.store import InvocationRecord, SqlStore, StoredToken, new_id


def record(**fields: Any) -> InvocationRecord:
    values: dict[str, Any] = {
        "id": new_id(),
        "function": "resize",
        "version": "0123456789ab",
        "status": "ok",
        "started_at": 1_700_000_000.0,
    }
    values.update(fields)
    return InvocationRecord(**values)


async def test_a_record_round_trips_every_field(store: SqlStore) -> None:
    full = record(
        trigger="resize.orders",
        event_ids=("e1", "e2"),
        attempt=2,
        status="error",
        duration_ms=12.5,
        billed_duration_ms=13,
        memory_size_mb=256,
        max_memory_used_mb=40,
        init_duration_ms=80.25,
        cold_start=True,
        error_type="ValueError",
        error_message="bad size",
        stack_trace=['  File "main.py", line 2, in handler'],
        logs="START\nhello\nEND\nREPORT ...\n",
        result=None,
        request_bytes=321,
    )
    ok = record(result=b'{"w": 640}')
    await store.record_invocations([full, ok])

    stored = await store.get_invocation(full.id)
    assert stored.recorded_id  # stamped when written
    assert dataclasses.replace(stored, recorded_id="") == full
    assert (await store.get_invocation(ok.id)).result == b'{"w": 640}'
    with pytest.raises(NotFoundError, match="no invocation 'nope'"):
        await store.get_invocation("nope")


@pytest.mark.parametrize(
    "odd_result",
    [
        b'{"name": "caf\xc3\xa9 \xf0\x9f\x90\x9f", "quote": "\\""}',
        b"\xff\xfe not text",
        b"nul \x00 inside",
    ],
    ids=["utf-8", "not-text", "nul"],
)
async def test_every_field_survives_a_batch_whatever_its_text(
    store: SqlStore, odd_result: bytes
) -> None:
    batch = [
        record(
            started_at=time.time(),
            duration_ms=0.123456789012,
            init_duration_ms=None if n % 2 else 1e-7,
            event_ids=(f"evt-{n}", 'quote"and\\slash'),
            stack_trace=[f'  File "main.py", line {n}', "tab\there"],
            logs=f"START\nline {n} \u00e9\u4e2d \x01\nEND\n",
            error_message=None if n % 3 else "bad \n value",
            result=odd_result if n == 2 else (None if n % 2 else b'{"n": %d}' % n),
            request_bytes=2**40 + n,
        )
        for n in range(5)
    ]
    await store.record_invocations(batch)
    for made in batch:
        stored = await store.get_invocation(made.id)
        assert dataclasses.replace(stored, recorded_id="") == made


async def test_a_record_is_built_from_an_executor_result(store: SqlStore) -> None:
    result = InvocationResult(
        request_id=new_id(),
        status="ok",
        result=b"1",
        started_at=5.0,
        duration_ms=2.0,
        billed_duration_ms=2,
        memory_size_mb=128,
        max_memory_used_mb=30,
        init_duration_ms=50.0,
    )
    made = InvocationRecord.from_result(
        result, function="resize", version="0123456789ab", event_ids=("e1",), request_bytes=9
    )
    await store.record_invocations([made])

    stored = await store.get_invocation(result.request_id)
    assert (stored.cold_start, stored.init_duration_ms, stored.result) == (True, 50.0, b"1")
    assert stored.event_ids == ("e1",)


def test_a_record_takes_every_figure_of_its_result() -> None:
    result = InvocationResult(
        request_id="req",
        status="error",
        result=b"null",
        error_type="ValueError",
        error_message="bad size",
        stack_trace=["  line 1\n"],
        logs="START\n",
        started_at=5.0,
        duration_ms=2.5,
        billed_duration_ms=3,
        memory_size_mb=128,
        max_memory_used_mb=30,
        init_duration_ms=50.0,
    )

    made = InvocationRecord.from_result(
        result,
        function="resize",
        version="0123456789ab",
        trigger="resize.orders",
        event_ids=("e1", "e2"),
        attempt=3,
        request_bytes=9,
    )

    assert made == InvocationRecord(
        id="req",
        function="resize",
        version="0123456789ab",
        status="error",
        started_at=5.0,
        trigger="resize.orders",
        event_ids=("e1", "e2"),
        attempt=3,
        duration_ms=2.5,
        billed_duration_ms=3,
        memory_size_mb=128,
        max_memory_used_mb=30,
        init_duration_ms=50.0,
        cold_start=True,
        error_type="ValueError",
        error_message="bad size",
        stack_trace=["  line 1\n"],
        logs="START\n",
        result=b"null",
        request_bytes=9,
    )
    assert InvocationRecord.from_result(result, function="f", version="v", id="other").id == (
        "other"
    )
    result.stack_trace.append("  line 2\n")  # the record keeps its own copy
    assert made.stack_trace == ["  line 1\n"]


async def test_records_without_events_or_trace_round_trip(store: SqlStore) -> None:
    bare = [record(), record(status="throttled", logs="")]
    await store.record_invocations(bare)

    for made in bare:
        stored = await store.get_invocation(made.id)
        assert dataclasses.replace(stored, recorded_id="") == made
        assert (stored.event_ids, stored.stack_trace) == ((), [])


async def test_records_are_stamped_in_the_order_they_are_written(store: SqlStore) -> None:
    rows = [record(started_at=float(n)) for n in range(2_500)]  # past 1024 in one batch
    await store.record_invocations(rows[:2_000])
    await store.record_invocations(rows[2_000:])

    # Following with ``after`` reads in the order of ``recorded_id``.
    written = await store.list_invocations(after="0", limit=3_000)
    assert [r.id for r in written] == [r.id for r in rows]
    assert len({r.recorded_id for r in written}) == 2_500


async def test_listing_is_newest_first_with_filters(store: SqlStore) -> None:
    rows = [
        record(function="resize", status="ok", started_at=100.0, trigger="resize.orders"),
        record(function="resize", status="error", started_at=200.0),
        record(function="notify", status="ok", started_at=300.0, trigger="notify.orders"),
        record(function="resize", status="timeout", started_at=400.0, trigger="resize.orders"),
    ]
    await store.record_invocations(rows)
    ids = [r.id for r in rows]

    assert [r.id for r in await store.list_invocations()] == ids[::-1]
    assert [r.id for r in await store.list_invocations(function="resize")] == [
        ids[3],
        ids[1],
        ids[0],
    ]
    assert [r.id for r in await store.list_invocations(status="ok")] == [ids[2], ids[0]]
    assert [r.id for r in await store.list_invocations(trigger="resize.orders")] == [ids[3], ids[0]]
    assert [r.id for r in await store.list_invocations(since=200.0, until=400.0)] == [
        ids[2],
        ids[1],
    ]
    assert [r.id for r in await store.list_invocations(function="resize", limit=1)] == [ids[3]]
    assert await store.list_invocations(function="ghost") == []


async def test_the_cursor_pages_through_everything_once(store: SqlStore) -> None:
    rows = [record(started_at=float(n)) for n in range(25)]
    await store.record_invocations(rows)

    seen: list[str] = []
    before: str | None = None
    while page := await store.list_invocations(limit=10, before=before):
        seen.extend(r.id for r in page)
        before = page[-1].id

    assert seen == [r.id for r in reversed(rows)]


async def test_following_with_after_reads_oldest_first_from_a_cursor(store: SqlStore) -> None:
    rows = [record(started_at=float(n)) for n in range(5)]
    await store.record_invocations(rows[:3])

    first = await store.list_invocations(after="0", limit=2)
    await store.record_invocations(rows[3:])
    rest = await store.list_invocations(after=first[-1].recorded_id)

    assert [r.id for r in first + rest] == [r.id for r in rows]
    assert await store.list_invocations(after=rest[-1].recorded_id) == []


async def test_following_misses_no_record_written_after_a_newer_one(store: SqlStore) -> None:
    # An invocation that started first but ended last is written last: whoever follows
    # with ``after`` still sees it, after the ones written before it.
    early, late = record(started_at=1.0), record(started_at=2.0)
    assert early.id < late.id
    await store.record_invocations([late])
    seen = await store.list_invocations(after="0")
    await store.record_invocations([early])
    more = await store.list_invocations(after=seen[-1].recorded_id)
    assert [r.id for r in seen + more] == [late.id, early.id]


async def test_stats_count_each_status(store: SqlStore) -> None:
    await store.record_invocations(
        [
            record(status="ok", started_at=1.0),
            record(status="ok", started_at=2.0),
            record(status="oom", started_at=3.0),
            record(function="notify", status="crashed", started_at=4.0),
        ]
    )

    everything = await store.invocation_stats()
    assert everything == {"ok": 2, "error": 0, "timeout": 0, "oom": 1, "crashed": 1, "throttled": 0}
    assert (await store.invocation_stats(function="resize"))["crashed"] == 0
    assert (await store.invocation_stats(since=2.5))["ok"] == 0


async def test_old_invocations_can_be_forgotten(store: SqlStore) -> None:
    old, new = record(started_at=10.0), record(started_at=20.0)
    await store.record_invocations([old, new])

    assert await store.delete_invocations(until=15.0) == 1
    assert [r.id for r in await store.list_invocations()] == [new.id]


async def test_a_duplicate_invocation_id_is_a_conflict(store: SqlStore) -> None:
    one = record()
    await store.record_invocations([one])

    with pytest.raises(ConflictError):
        await store.record_invocations([record(id=one.id)])


async def test_recording_throughput_in_batches_of_200(store: SqlStore) -> None:
    """Prints records per second; the figure that matters is measured in bench/."""
    batches = [
        [record(logs="START\nline\nEND\nREPORT x\n", event_ids=("e",)) for _ in range(200)]
        for _ in range(25)
    ]
    began = time.perf_counter()
    for batch in batches:
        await store.record_invocations(batch)
    elapsed = time.perf_counter() - began

    print(f"record_invocations: {5000 / elapsed:,.0f} records/s in batches of 200")
    assert len(await store.list_invocations(limit=6000)) == 5000


async def test_tokens_are_stored_listed_and_revoked(store: SqlStore) -> None:
    token = StoredToken(
        id="tok1", name="ci", secret_hash="h" * 64, scopes=("deploy", "invoke"), created_at=1.0
    )
    other = StoredToken(id="tok2", name="ro", secret_hash="x", scopes=(), created_at=2.0)
    await store.put_token(token)
    await store.put_token(other)

    assert await store.get_token("tok1") == token
    assert [t.id for t in await store.list_tokens()] == ["tok1", "tok2"]
    revoked = await store.revoke_token("tok1")
    assert revoked.revoked
    assert (await store.get_token("tok1")).revoked
    with pytest.raises(ConflictError):
        await store.put_token(token)
    with pytest.raises(NotFoundError):
        await store.revoke_token("nope")
    with pytest.raises(NotFoundError):
        await store.get_token("nope")


@pytest.mark.parametrize("result", [b'{"ok": true}', b"\xff not text", b"nul \x00"])
async def test_a_store_opened_by_uri_records_through_its_pool(
    tmp_path: Path, result: bytes
) -> None:
    """A URI may name a database in memory, which another connection would not see: its
    records go through the pooled connection, not a writer of their own."""
    url = f"sqlite+aiosqlite:///file:{tmp_path / 'store.db'}?uri=true"
    batch = [record(result=result, event_ids=("e1",), stack_trace=["x"]), record()]
    async with SqlStore(url) as store:
        await store.record_invocations(batch)
        for made in batch:
            stored = await store.get_invocation(made.id)
            assert stored.recorded_id
            assert dataclasses.replace(stored, recorded_id="") == made


async def test_records_written_before_a_stop_are_there_after_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    batch = [record() for _ in range(50)]
    async with SqlStore(url) as store:
        await store.record_invocations(batch)
    async with SqlStore(url) as store:
        assert len(await store.list_invocations(limit=100)) == 50

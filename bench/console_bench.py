"""How fast each page of the web console answers with 100,000 invocations recorded.

Run from the repository root: ``python -m bench.console_bench`` (``--quick``: 10,000
records and fewer samples; ``--store postgresql://HOST/DB`` for a PostgreSQL store: a
fresh database is made on that server for the run and dropped after it).

A fresh ``triggerfish up`` gets ``bench/functions`` (``noop``) and ``examples/orders``
(``validate`` emits ``order.accepted``, ``fulfil`` ships it: a two-step chain), and real
events run through both: orders, rejected orders, and accepted orders without a total,
which ``fulfil`` fails on until they reach the dead-letter topic ``orders-failed``. The
bulk of the records is then written through the node's own store API
(``SqlStore.record_invocations`` and ``store.chains.record``, what the recorder calls),
from this process, into the node's store while it runs: spread over the last 7 days,
six functions (two of them deleted since), about 5% failures (errors with a stack
trace, timeouts, crashes), throttles, cold starts, and a third of them chains of
``validate`` then ``fulfil`` with their events.

Each page's requests are then made as ``console.js`` makes them (what it awaits in
parallel with ``Promise.all``, in parallel; the rest one after the other), over at most
six connections, as a browser opens to one server; a sample is the time from the first
request to the last answer. p50 and p95 of the samples, per page; pages over 300 ms
at p95 are printed in red.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from bench.triggerfish_core import TriggerfishServer, expect, find_executable

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "examples" / "orders"
NOOP = ROOT / "bench" / "functions"
BUDGET_MS = 300.0
DAY = 86400.0
WEEK = 7 * DAY
BATCH = 2_000
BROWSER_CONNECTIONS = 6
# The functions of the bulk records: deployed ones, and two deleted since (their
# history stays in the store and in the costs).
FUNCTIONS = ("noop", "validate", "fulfil", "resize", "notify", "billing")
RED = "\033[31;1m"
RESET = "\033[0m"


@dataclass
class Seeds:
    """What the pages are opened on."""

    invocation: str  # an invocation of a trigger, with its event
    chain: str  # the first event of a real chain
    bulk_chain: str  # an invocation of a bulk chain


# -- the node and its records -----------------------------------------------------------


def make_id(at: float, rng: random.Random) -> str:
    """An invocation id made at ``at`` (ids sort by their time; see ``triggerfish.ids``)."""
    from triggerfish.ids import id_floor

    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return id_floor(at)[:10] + "".join(rng.choices(alphabet, k=16))


def bulk_records(count: int, now: float, triggers: dict[str, str], seed: int = 7) -> list[Any]:
    """``count`` invocation records over the week before ``now``, oldest first."""
    from triggerfish.store.records import ChainEvent

    rng = random.Random(seed)
    records: list[Any] = []
    step = WEEK / count
    while len(records) < count:
        at = now - WEEK + len(records) * step + rng.random() * step
        kind = rng.random()
        if kind < 1 / 3 and len(records) + 2 <= count:
            # A chain: validate handles order.created and emits order.accepted, which
            # fulfil handles a few milliseconds later.
            created, accepted = uuid.uuid4().hex, uuid.uuid4().hex
            first = make_id(at, rng)
            second = make_id(at + 0.004, rng)
            events = (
                ChainEvent(created, created, "shop", "orders", "order.created"),
                ChainEvent(
                    created, accepted, "triggerfish", "orders", "order.accepted", None, first
                ),
            )
            for id_, function, event, start in (
                (first, "validate", created, at),
                (second, "fulfil", accepted, at + 0.004),
            ):
                records.append(
                    record(rng, id_, function, start, triggers.get(function), (event,), created)
                )
            records[-2].events = events
            records[-1].events = events[1:]
            continue
        function = rng.choice(FUNCTIONS)
        records.append(record(rng, make_id(at, rng), function, at, None, (), None))
    return records


def record(
    rng: random.Random,
    id_: str,
    function: str,
    started_at: float,
    trigger: str | None,
    event_ids: tuple[str, ...],
    correlation: str | None,
) -> Any:
    from triggerfish.store.records import InvocationRecord

    roll = rng.random()
    status = "ok"
    error: tuple[str | None, str | None, list[str]] = (None, None, [])
    if roll < 0.03:
        status = "error"
        error = (
            "KeyError",
            "'total'",
            ['  File "/var/task/main.py", line 6, in handler\n', "KeyError: 'total'\n"],
        )
    elif roll < 0.04:
        status, error = "timeout", ("Timeout", "Task timed out after 3.00 seconds", [])
    elif roll < 0.045:
        status, error = "crashed", ("Crashed", "the environment exited with code 1", [])
    elif roll < 0.055:
        status = "throttled"
    duration = 0.0 if status == "throttled" else rng.lognormvariate(1.0, 0.8)
    cold = status != "throttled" and rng.random() < 0.02
    logs = (
        f"START RequestId: {id_} Version: 0123456789ab\nhandled\n"
        f"END RequestId: {id_}\nREPORT RequestId: {id_}\tDuration: {duration:.2f} ms\n"
    )
    return InvocationRecord(
        id=id_,
        function=function,
        version="0123456789ab",
        status=status,  # type: ignore[arg-type]
        started_at=started_at,
        trigger=trigger,
        event_ids=event_ids,
        duration_ms=duration,
        billed_duration_ms=int(duration) + 1 if duration else 0,
        memory_size_mb=128,
        max_memory_used_mb=31,
        init_duration_ms=rng.uniform(5, 150) if cold else None,
        cold_start=cold,
        error_type=error[0],
        error_message=error[1],
        stack_trace=error[2],
        logs=logs if status != "throttled" else "",
        result=b'{"ok": true}' if status == "ok" else None,
        request_bytes=200,
        correlation=correlation,
    )


async def write_records(store_url: str, records: list[Any]) -> float:
    """Write ``records`` through the store API in batches; the seconds it took."""
    from triggerfish.store.sql import SqlStore
    from triggerfish.store.urls import database_url

    store = SqlStore(database_url(store_url))
    await store.start()
    try:
        began = time.perf_counter()
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            await store.record_invocations(batch)
            await store.chains.record([event for r in batch for event in r.events])
        return time.perf_counter() - began
    finally:
        await store.stop()


def cloud_event(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "shop",
        "type": type_,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }


def real_traffic(client: httpx.Client, orders: int) -> str:
    """Orders through the chain, some rejected, and accepted orders ``fulfil`` fails
    on (no total) until they are dead letters; the id of the first order's event."""
    events = []
    for n in range(orders):
        items = [{"price": 10.0, "quantity": 1 + n % 3}] if n % 5 else []
        events.append(cloud_event("order.created", {"id": f"o-{n}", "items": items}))
    broken = [cloud_event("order.accepted", {"id": f"b-{n}"}) for n in range(8)]
    batch = {"Content-Type": "application/cloudevents-batch+json"}
    expect(
        client.post("/v1/topics/orders/events", content=json.dumps(events + broken), headers=batch),
        202,
    )
    for n in range(40):
        noop = client.post("/v1/functions/noop/invoke", json={"n": n})
        if noop.status_code != 200:
            raise RuntimeError(f"invoke noop answered {noop.status_code}: {noop.text[:200]}")
    return str(events[1]["id"])


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.25)


def dead_letters_waiting(client: httpx.Client) -> bool:
    found = expect(client.get("/v1/dlq"), 200)["dead_letters"]
    return any(d["topic"] == "orders-failed" and d["pending"] >= 8 for d in found)


# -- the pages, as console.js asks for them ---------------------------------------------


Page = Callable[[httpx.AsyncClient], Awaitable[None]]


async def get(client: httpx.AsyncClient, path: str) -> Any:
    response = await client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    return response.json()


def pages(seeds: Seeds, now: Callable[[], float], *, per_bar: bool = False) -> dict[str, Page]:
    """The console's pages; ``per_bar``: the costs pages as they were asked for before
    ``GET /v1/costs`` had ``periods`` (to compare)."""

    async def functions(c: httpx.AsyncClient) -> None:
        day = int(now() - DAY)
        listed, _, _ = await asyncio.gather(
            get(c, "/v1/functions"),
            get(c, f"/v1/costs?since={day}"),
            get(c, f"/v1/invocations?since={day}&limit=1000"),
        )
        await asyncio.gather(*(get(c, f"/v1/functions/{f['name']}") for f in listed["functions"]))

    async def function(c: httpx.AsyncClient) -> None:
        await asyncio.gather(
            get(c, "/v1/functions/validate"),
            get(c, "/v1/invocations?function=validate&limit=50"),
            get(c, "/v1/whoami?can=invoke%3Avalidate%3Alive"),
        )

    async def stream(c: httpx.AsyncClient) -> None:
        await get(c, "/v1/functions")
        # The first answer: the stream's headers and its first line.
        async with c.stream("GET", "/v1/invocations/stream?status=error") as response:
            if response.status_code != 200:
                raise RuntimeError(f"the stream answered {response.status_code}")
            async for _ in response.aiter_bytes():
                break

    async def invocation(c: httpx.AsyncClient) -> None:
        record = await get(c, f"/v1/invocations/{seeds.invocation}")
        await asyncio.gather(*(find_event(c, record) for _ in record["event_ids"]))

    async def find_event(c: httpx.AsyncClient, record: dict[str, Any]) -> None:
        if not record["trigger"]:
            return
        triggers = (await get(c, f"/v1/triggers?function={record['function']}"))["triggers"]
        trigger = next(t for t in triggers if t["id"] == record["trigger"])
        since = int(record["started_at"] - 3600)
        await get(c, f"/v1/topics/{trigger['topic']}/events?since={since}&limit=1000")

    async def chain(c: httpx.AsyncClient) -> None:
        await get(c, f"/v1/chains/{seeds.chain}")

    async def bulk_chain(c: httpx.AsyncClient) -> None:
        await get(c, f"/v1/chains/{seeds.bulk_chain}")

    async def topics(c: httpx.AsyncClient) -> None:
        listed, _, _ = await asyncio.gather(
            get(c, "/v1/topics"), get(c, "/v1/dlq"), get(c, "/v1/whoami?can=deploy")
        )
        await asyncio.gather(*(get(c, f"/v1/topics/{t['name']}") for t in listed["topics"]))

    def costs(seconds: float, count: int) -> Page:
        async def page(c: httpx.AsyncClient) -> None:
            until = int(now()) + 1
            since = until - seconds
            if per_bar:  # as the console asked before ``periods``: a request a bar
                step = seconds / count
                await asyncio.gather(
                    get(c, f"/v1/costs?since={since}&until={until}"),
                    get(c, f"/v1/invocations?since={since}&limit=1000"),
                    *(
                        get(c, f"/v1/costs?since={since + i * step}&until={since + (i + 1) * step}")
                        for i in range(count)
                    ),
                )
                return
            await asyncio.gather(
                get(c, f"/v1/costs?since={since}&until={until}&periods={count}"),
                get(c, f"/v1/invocations?since={since}&limit=1000"),
            )

        return page

    async def nodes(c: httpx.AsyncClient) -> None:
        await get(c, "/v1/nodes")

    # Filters of GET /v1/invocations that the CLI and API clients use beside the
    # console's own: by status (a rare one: a scan may find none), by trigger.
    async def filters(c: httpx.AsyncClient) -> None:
        await get(c, "/v1/invocations?status=crashed&limit=50")
        await get(c, "/v1/invocations?function=fulfil&status=error&limit=50")
        await get(c, "/v1/invocations?status=oom&limit=50")

    return {
        "functions": functions,
        "a function": function,
        "live (first answer)": stream,
        "an invocation": invocation,
        "a chain (real)": chain,
        "a chain (bulk)": bulk_chain,
        "topics and dead letters": topics,
        "costs, last hour": costs(3600, 12),
        "costs, last 24 hours": costs(DAY, 24),
        "costs, last 7 days": costs(WEEK, 28),
        "nodes": nodes,
        "invocation filters (API)": filters,
    }


async def measure(
    url: str, token: str, seeds: Seeds, samples: int, *, per_bar: bool
) -> dict[str, list[float]]:
    limits = httpx.Limits(max_connections=BROWSER_CONNECTIONS)
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60
    ) as client:
        table = pages(seeds, time.time, per_bar=per_bar)
        for page in table.values():  # one warm-up each: connections, caches
            await page(client)
        for _ in range(samples):  # pages in turn, as a person clicks through them
            for name, page in table.items():
                began = time.perf_counter()
                await page(client)
                times.setdefault(name, []).append((time.perf_counter() - began) * 1000)
    return times


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def render(times: dict[str, list[float]]) -> str:
    lines = ["| page | p50 ms | p95 ms |", "| --- | ---: | ---: |"]
    slow = []
    for name, values in times.items():
        p50, p95 = statistics.median(values), quantile(values, 0.95)
        cells = f"| {name} | {p50:.1f} | {p95:.1f} |"
        if p95 > BUDGET_MS:
            slow.append(name)
            cells = (
                f"{RED}{cells}  OVER {BUDGET_MS:.0f} ms{RESET}"
                if sys.stdout.isatty()
                else (f"{cells} **over {BUDGET_MS:.0f} ms**")
            )
        lines.append(cells)
    if slow:
        loud = f"SLOW (p95 over {BUDGET_MS:.0f} ms): {', '.join(slow)}"
        lines += ["", f"{RED}{loud}{RESET}" if sys.stdout.isatty() else f"**{loud}**"]
    return "\n".join(lines)


# -- PostgreSQL: a database of its own ---------------------------------------------------


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{quote(database)}"))


async def postgres(url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# -- the run --------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    count = 10_000 if args.quick else args.records
    samples = 5 if args.quick else args.samples
    env: dict[str, str] = {}
    database = None
    if args.store:
        database = f"tf_console_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(postgres(args.store, f'CREATE DATABASE "{database}"'))
        env["TRIGGERFISH_STORE"] = with_database(args.store, database)
    server = TriggerfishServer(find_executable(), env=env)
    try:
        server.start()
        store_url = env.get("TRIGGERFISH_STORE") or f"sqlite:///{server.data / 'store.db'}"
        server.deploy(NOOP)
        server.deploy(ORDERS)
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
            triggers = {
                t["function"]: t["id"] for t in expect(client.get("/v1/triggers"), 200)["triggers"]
            }
            first_order = real_traffic(client, 60)
            records = bulk_records(count, time.time(), triggers)
            seconds = asyncio.run(write_records(store_url, records))
            print(
                f"wrote {count:,} records in {seconds:.1f} s ({count / seconds:,.0f}/s)",
                file=sys.stderr,
            )
            wait_for("8 dead letters in orders-failed", lambda: dead_letters_waiting(client), 60)
            listed = expect(client.get("/v1/invocations?function=fulfil&limit=200"), 200)
            real = next(r for r in listed["invocations"] if r["trigger"] and r["event_ids"])
        bulk = next(r for r in reversed(records) if r.correlation)
        seeds = Seeds(invocation=real["id"], chain=first_order, bulk_chain=bulk.id)
        times = asyncio.run(measure(server.url, server.token, seeds, samples, per_bar=args.per_bar))
    finally:
        server.stop()
        if database is not None:
            asyncio.run(postgres(args.store, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    return {
        "records": count,
        "samples": samples,
        "store": "postgresql" if args.store else "sqlite",
        "times_ms": times,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.console_bench", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20, help="of each page")
    parser.add_argument("--quick", action="store_true", help="10,000 records, 5 samples")
    parser.add_argument("--store", default="", help="postgresql://HOST[:PORT]/DB: a server to use")
    parser.add_argument(
        "--per-bar",
        action="store_true",
        help="costs pages with a request per bar, as the console asked before `periods`",
    )
    parser.add_argument("--json", type=Path, help="write the samples here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print(
        f"{result['records']:,} invocations, {result['store']} store, "
        f"{result['samples']} samples a page, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(render(result["times_ms"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

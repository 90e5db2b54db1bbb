"""Event-pattern matching speed: one pattern, and 1,000 rules on one topic.

Run from the repository root: ``python -m bench.patterns_bench``.

Prints, on one core:
- matches/s of one CloudEvent against one typical pattern (5 fields, mixed operators),
  next to the published figure of AWS's open-source matcher (event-ruler, Java);
- events/s through a ``RuleSet`` holding that one rule, and holding 1,000 rules of the
  same shape (each trigger filters on its own source), and the slowdown between them;
- the same with 1,000 rules that share one source and differ in their type, the
  harder case for the index.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from triggerfish.events.model import Event
from triggerfish.patterns import RuleSet, compile, event_view

#: AWS event-ruler's published single-pattern throughput, events per second.
EVENT_RULER_PUBLISHED = 220_000


def typical_event() -> dict[str, Any]:
    event = Event(
        id="6f1c7a52-4c1d-4a8e-9b1e-0c5f1f3d2a10",
        source="shop/orders",
        type="com.shop.order.created",
        subject="order-81723",
        time="2025-03-01T12:00:00Z",
        datacontenttype="application/json",
        data=(
            b'{"orderId": "81723", "total": 250.5, "currency": "EUR",'
            b' "customer": {"id": "c-19", "tier": "Gold", "country": "DE"},'
            b' "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}'
        ),
        extensions={"partitionkey": "c-19", "correlationid": "81723"},
    )
    return event_view(event)


def typical_pattern(source: str = "shop/orders", type_prefix: str = "com.shop.order.") -> Any:
    return {
        "source": [source],
        "type": [{"prefix": type_prefix}],
        "data": {
            "total": [{"numeric": [">", 100, "<=", 5000]}],
            "currency": [{"anything-but": ["XTS", "XXX"]}],
            "customer": {"tier": [{"equals-ignore-case": "gold"}]},
        },
    }


def rate(call: Callable[[], Any], seconds: float, rounds: int = 5) -> float:
    """Calls per second of ``call``: the best of ``rounds`` runs over ``seconds`` in all.

    The best run is the one least disturbed by other work on the machine.
    """
    batch = 1000
    best = 0.0
    for _ in range(rounds):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            for _ in range(batch):
                call()
            calls += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - start))
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args(argv)
    seconds: float = args.seconds

    event = typical_event()
    pattern = compile(typical_pattern())
    assert pattern.matches(event)
    matches = pattern.matches
    single = rate(lambda: matches(event), seconds)

    one = RuleSet()
    one.add("rule-0", typical_pattern())
    assert one.match(event) == {"rule-0"}
    one_rate = rate(lambda: one.match(event), seconds)

    by_source = RuleSet()
    for i in range(1000):
        by_source.add(f"rule-{i}", typical_pattern(source="shop/orders" if i == 500 else f"s{i}"))
    assert by_source.match(event) == {"rule-500"}
    by_source_rate = rate(lambda: by_source.match(event), seconds)

    by_type = RuleSet()
    for i in range(1000):
        prefix = "com.shop.order." if i == 500 else f"com.shop.t{i}."
        by_type.add(f"rule-{i}", typical_pattern(type_prefix=prefix))
    assert by_type.match(event) == {"rule-500"}
    by_type_rate = rate(lambda: by_type.match(event), seconds)

    print("event pattern matching, one core, pure Python")
    print(f"  one pattern (5 fields, mixed operators): {single:>12,.0f} matches/s")
    print(f"  event-ruler, published (Java):           {EVENT_RULER_PUBLISHED:>12,.0f} events/s")
    print(f"  RuleSet, 1 rule:                         {one_rate:>12,.0f} events/s")
    print(f"  RuleSet, 1,000 rules (own source each):  {by_source_rate:>12,.0f} events/s")
    print(f"    slowdown vs 1 rule:                    {one_rate / by_source_rate:>12.2f}x")
    print(f"    slowdown vs Pattern.matches:           {single / by_source_rate:>12.2f}x")
    print(f"  RuleSet, 1,000 rules (shared source):    {by_type_rate:>12,.0f} events/s")
    print(f"    slowdown vs 1 rule:                    {one_rate / by_type_rate:>12.2f}x")


if __name__ == "__main__":
    main()

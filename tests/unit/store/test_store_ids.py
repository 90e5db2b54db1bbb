"""Time-sortable ids."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from triggerfish.store import IdGenerator, id_floor, id_time, new_id


def test_ids_are_26_characters_and_strictly_increasing() -> None:
    ids = [new_id() for _ in range(20_000)]

    assert all(len(i) == 26 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_from_many_threads_are_unique() -> None:
    make = IdGenerator()
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: make(), range(10_000)))

    assert len(set(ids)) == 10_000


def test_an_id_tells_when_it_was_made() -> None:
    before = time.time()
    made = new_id()
    after = time.time()

    assert before - 0.001 <= id_time(made) <= after + 0.001


def test_the_floor_of_a_time_sorts_before_ids_made_then() -> None:
    floor = id_floor(time.time())

    assert floor <= new_id()
    assert id_floor(0.0) == "0" * 26

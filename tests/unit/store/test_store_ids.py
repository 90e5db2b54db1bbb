"""Time-sortable ids."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

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


def test_each_thread_sees_its_ids_increase() -> None:
    make = IdGenerator()

    def run(_: int) -> list[str]:
        return [make() for _ in range(2_000)] + make.many(500)

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(run, range(4)))

    assert all(made == sorted(made) for made in runs)
    assert len({i for made in runs for i in made}) == 4 * 2_500


def test_ids_in_bulk_continue_the_sequence() -> None:
    before = new_id()
    bulk = new_id.many(3_000)  # more than 1024: the last two characters wrap
    after = new_id()

    assert len(bulk) == 3_000
    assert all(len(i) == 26 for i in bulk)
    assert [before, *bulk, after] == sorted({before, *bulk, after})
    assert new_id.many(0) == []


def test_ids_use_crockford_base_32() -> None:
    allowed = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert all(set(i) <= allowed for i in [new_id() for _ in range(2_000)])


def _ids_across_a_fork(make: IdGenerator, count: int) -> tuple[list[str], list[str]]:
    """Ids made by ``make`` just after a fork: in the child (read back through a pipe)
    and in the parent, at the same time."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            signal.alarm(10)  # a child stuck on a lock held at the fork dies, not hangs
            os.write(write, json.dumps([make() for _ in range(count)]).encode())
        finally:
            os._exit(0)
    parent = [make() for _ in range(count)]
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child could not make ids"
    child: list[str] = json.loads(text)
    return child, parent


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_goes_on_increasing_and_does_not_repeat_its_parent() -> None:
    make = IdGenerator()

    for _ in range(5):
        before = make()
        child, parent = _ids_across_a_fork(make, 1_000)

        assert child == sorted(child)
        assert child[0] > before
        assert len(set(child)) == 1_000
        assert not set(child) & set(parent)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
# Python 3.12 warns of any fork of a process with threads: that is the case tested.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_while_another_thread_makes_ids_can_make_ids() -> None:
    make = IdGenerator()
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            make()

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        for _ in range(20):
            child, _ = _ids_across_a_fork(make, 10)
            assert len(child) == 10
    finally:
        stop.set()
        worker.join()

"""Functions, versions, aliases and triggers in a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from triggerfish.errors import AdapterError, ConflictError, NotFoundError, ValidationError
from triggerfish.store import LATEST, SqlStore, TriggerRecord


def digest(n: int) -> str:
    return f"{n:x}".rjust(64, "0")[::-1]


async def put(store: SqlStore, function: str, n: int, **config: Any) -> Any:
    d = digest(n)
    return await store.put_function_version(function, {"handler": "main.h", **config}, d, d[:12])


async def test_versions_are_numbered_per_function_and_live_follows(store: SqlStore) -> None:
    one = await put(store, "resize", 1)
    two = await put(store, "resize", 2, memory=256)
    other = await put(store, "notify", 3)

    assert (one.number, two.number, other.number) == (1, 2, 1)
    assert two.config == {"handler": "main.h", "memory": 256}
    assert (await store.resolve("resize")).version == two.version
    assert [v.number for v in await store.list_versions("resize")] == [1, 2]
    assert [f.name for f in await store.list_functions()] == ["notify", "resize"]
    function = await store.get_function("resize")
    assert function.updated_at >= function.created_at


async def test_putting_the_same_version_again_creates_nothing(store: SqlStore) -> None:
    first = await put(store, "resize", 1)
    await put(store, "resize", 2)

    again = await put(store, "resize", 1)

    assert again == first
    assert len(await store.list_versions("resize")) == 2
    assert (await store.resolve("resize")).version == first.version


async def test_a_version_id_clash_with_another_digest_is_a_conflict(store: SqlStore) -> None:
    await put(store, "resize", 1)

    with pytest.raises(ConflictError, match="another digest"):
        await store.put_function_version("resize", {}, "f" * 64, digest(1)[:12])


async def test_find_version_by_digest(store: SqlStore) -> None:
    one = await put(store, "resize", 1)

    assert await store.find_version_by_digest("resize", digest(1)) == one
    assert await store.find_version_by_digest("resize", digest(2)) is None
    assert await store.find_version_by_digest("notify", digest(1)) is None


async def test_resolve_by_alias_version_id_number_and_latest(store: SqlStore) -> None:
    one = await put(store, "resize", 1)
    two = await put(store, "resize", 2)
    await store.set_alias("resize", "stable", 1)

    assert await store.resolve("resize", "stable") == one
    assert await store.resolve("resize", "live") == two
    assert await store.resolve("resize", one.version) == one
    assert await store.resolve("resize", "2") == two
    assert await store.resolve("resize", LATEST) == two
    assert await store.get_version("resize", 1) == one
    assert await store.get_version("resize", two.version) == two


async def test_unknown_qualifiers_say_what_exists(store: SqlStore) -> None:
    await put(store, "resize", 1)
    await store.set_alias("resize", "beta", 1)

    with pytest.raises(NotFoundError, match=r"no alias or version 'gamma' \(aliases: beta, live"):
        await store.resolve("resize", "gamma")
    with pytest.raises(NotFoundError, match=r"has no version '7' \(it has versions 1 to 1"):
        await store.resolve("resize", "7")
    with pytest.raises(NotFoundError, match="no function 'nope'; deploy it first"):
        await store.resolve("nope")
    with pytest.raises(NotFoundError, match="no function 'nope'"):
        await store.get_function("nope")


async def test_aliases_move_and_are_listed(store: SqlStore) -> None:
    one = await put(store, "resize", 1)
    two = await put(store, "resize", 2)

    await store.set_alias("resize", "canary", two.version)
    await store.set_alias("resize", "canary", "1")
    await store.set_alias("resize", "live", 1)

    aliases = {a.name: a.version for a in await store.list_aliases("resize")}
    assert aliases == {"canary": one.version, "live": one.version}
    await store.delete_alias("resize", "canary")
    assert [a.name for a in await store.list_aliases("resize")] == ["live"]


@pytest.mark.parametrize("alias", ["123", "abcdef012345", "has space", "", "$LATEST"])
async def test_alias_names_that_would_be_ambiguous_are_refused(store: SqlStore, alias: str) -> None:
    await put(store, "resize", 1)

    with pytest.raises(ValidationError, match="is not valid"):
        await store.set_alias("resize", alias, 1)


async def test_an_alias_to_a_missing_version_is_refused(store: SqlStore) -> None:
    await put(store, "resize", 1)

    with pytest.raises(NotFoundError, match="no version '5'"):
        await store.set_alias("resize", "beta", 5)


def trigger(function: str, name: str, topic: str = "orders", **config: Any) -> TriggerRecord:
    return TriggerRecord(
        id=f"{function}.{name}", function=function, topic=topic, config={"topic": topic, **config}
    )


async def test_replace_triggers_reports_added_and_removed(store: SqlStore) -> None:
    await put(store, "resize", 1)
    added, removed = await store.replace_triggers(
        "resize", [trigger("resize", "a"), trigger("resize", "b")]
    )
    assert (added, removed) == (["resize.a", "resize.b"], [])
    created = (await store.get_trigger("resize.a")).created_at

    added, removed = await store.replace_triggers(
        "resize", [trigger("resize", "a", batch_size=5), trigger("resize", "c", topic="images")]
    )

    assert (added, removed) == (["resize.c"], ["resize.b"])
    kept = await store.get_trigger("resize.a")
    assert kept.config == {"topic": "orders", "batch_size": 5}
    assert kept.created_at == created
    assert [t.id for t in await store.list_triggers()] == ["resize.a", "resize.c"]
    assert (await store.get_trigger("resize.c")).topic == "images"
    with pytest.raises(NotFoundError, match=r"no trigger 'resize\.b'"):
        await store.get_trigger("resize.b")


async def test_triggers_of_an_unknown_function_are_refused(store: SqlStore) -> None:
    with pytest.raises(NotFoundError):
        await store.replace_triggers("ghost", [trigger("ghost", "a")])


async def test_delete_function_removes_versions_aliases_and_triggers(store: SqlStore) -> None:
    await put(store, "resize", 1)
    await put(store, "notify", 2)
    await store.replace_triggers("resize", [trigger("resize", "a")])
    await store.replace_triggers("notify", [trigger("notify", "a")])

    await store.delete_function("resize")

    assert [f.name for f in await store.list_functions()] == ["notify"]
    assert [t.id for t in await store.list_triggers()] == ["notify.a"]
    with pytest.raises(NotFoundError):
        await store.list_versions("resize")
    with pytest.raises(NotFoundError):
        await store.delete_function("resize")
    again = await put(store, "resize", 1)
    assert again.number == 1


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with SqlStore(url) as store:
        one = await put(store, "resize", 1)

    async with SqlStore(url) as store:
        assert await store.resolve("resize") == one


async def test_concurrent_deploys_of_one_function_get_distinct_numbers(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with SqlStore(url) as first, SqlStore(url) as second:
        stores = [first, second] * 5
        await asyncio.gather(*(put(s, "resize", n) for n, s in enumerate(stores, 1)))

        numbers = [v.number for v in await first.list_versions("resize")]

    assert numbers == list(range(1, 11))


async def test_a_store_that_is_not_started_says_so(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")

    with pytest.raises(AdapterError, match="not started"):
        await store.list_functions()


async def test_an_unusable_database_is_an_adapter_error(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_text("this is not a database file" * 100)

    with pytest.raises(AdapterError, match="store error"):
        await SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}").start()

"""Backends chosen by URL: the embedded defaults, the cluster engines, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.bus.sqlite import SqliteBus
from triggerfish.bus.urls import open_bus
from triggerfish.config import load_settings
from triggerfish.errors import ConfigError
from triggerfish.store.urls import database_url, is_shared


def test_store_urls_name_their_async_driver() -> None:
    assert database_url("sqlite:///data/store.db") == "sqlite+aiosqlite:///data/store.db"
    assert database_url("postgresql://tf@db:5432/tf") == "postgresql+asyncpg://tf@db:5432/tf"
    assert database_url("postgres://tf@db/tf") == "postgresql+asyncpg://tf@db/tf"
    assert database_url("postgresql+asyncpg://tf@db/tf") == "postgresql+asyncpg://tf@db/tf"
    assert is_shared("postgresql://tf@db/tf")
    assert not is_shared("sqlite:///data/store.db")


@pytest.mark.parametrize("url", ["mysql://db/tf", "store.db", "redis://localhost"])
def test_an_unknown_store_url_says_what_is_expected(url: str) -> None:
    with pytest.raises(ConfigError, match=r"expected sqlite:///path/store.db or postgresql://"):
        database_url(url)


async def test_the_default_bus_is_the_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path}, environ={}, cwd=tmp_path)
    bus = open_bus(settings.resolved_bus_url, dedupe_window=60)
    assert isinstance(bus, SqliteBus)
    async with bus:
        await bus.create_topic("orders")
    async with open_bus(f"sqlite:///{tmp_path / 'bus.db'}", dedupe_window=60) as again:
        assert [t.name for t in await again.topics()] == ["orders"]


@pytest.mark.parametrize("url", ["kafka://broker:9092", "sqlite://", "nats://", "bus.db"])
def test_an_unknown_bus_url_says_what_is_expected(url: str) -> None:
    with pytest.raises(ConfigError, match=r"expected sqlite:///path/bus.db .* or nats://"):
        open_bus(url, dedupe_window=60)


def test_urls_come_from_flags_variables_and_the_toml_file(tmp_path: Path) -> None:
    (tmp_path / "triggerfish.toml").write_text('store = "postgresql://tf@db/tf"\n')
    env = {"TRIGGERFISH_BUS": "nats://127.0.0.1:4222"}
    settings = load_settings(environ=env, cwd=tmp_path)
    assert settings.resolved_store_url == "postgresql://tf@db/tf"
    assert settings.resolved_bus_url == "nats://127.0.0.1:4222"
    flagged = load_settings({"bus_url": "sqlite:///x/bus.db"}, environ=env, cwd=tmp_path)
    assert flagged.resolved_bus_url == "sqlite:///x/bus.db"

"""Store URLs as a person writes them, and the SQLAlchemy URLs they stand for.

``sqlite:///path/store.db`` (the embedded default) and ``postgresql://user@host/db``
(the store of a cluster) are the two backends; the async driver of each is chosen
here, so a user never has to name it. A URL that already names a driver
(``sqlite+aiosqlite://``, ``postgresql+asyncpg://``) is taken as it is.
"""

from __future__ import annotations

from triggerfish.errors import ConfigError

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def database_url(url: str) -> str:
    """The SQLAlchemy URL of a store URL; ConfigError for a scheme Triggerfish has no
    store for."""
    scheme, sep, rest = url.partition("://")
    driver = _DRIVERS.get(scheme.lower()) if sep else None
    if driver is None:
        raise ConfigError(
            f"store URL {url!r}: expected sqlite:///path/store.db or "
            "postgresql://user:password@host:5432/database"
        )
    return f"{driver}://{rest}"


def is_shared(url: str) -> bool:
    """Whether several nodes can share a store at ``url`` (PostgreSQL) or not (SQLite)."""
    return database_url(url).startswith("postgresql")

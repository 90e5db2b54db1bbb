"""A database that cannot be reached fails a transaction with ``AdapterError`` (a 503
to API callers, a retry to background tasks), not with the socket's own error; an
error of the caller's own code inside a transaction stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.services import free_port
from triggerfish.errors import AdapterError
from triggerfish.store.engine import Database


async def test_a_refused_connection_is_an_adapter_error_naming_the_store() -> None:
    nobody = free_port()  # nothing listens there
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{nobody}/triggerfish")
    await database.open()
    try:
        with pytest.raises(AdapterError, match=f"cannot reach the store .*:{nobody}/"):
            async with database.read():
                pass
    finally:
        await database.close()


async def test_an_os_error_inside_a_transaction_stays_the_callers(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await database.open()
    try:
        with pytest.raises(FileNotFoundError):
            async with database.write():
                raise FileNotFoundError("the caller's own")
    finally:
        await database.close()

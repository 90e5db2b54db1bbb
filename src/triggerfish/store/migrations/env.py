"""Alembic's environment for the store's migrations.

It runs only inside ``SqlStore.start()`` (see ``runner.py``), never from an
``alembic.ini``: the connection arrives in the configuration's attributes, already
inside the transaction that the runner commits, so the revisions of one upgrade
apply together or not at all. On SQLite the revisions' ``ALTER`` steps run in batch
mode (the table is copied), since SQLite alters little in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from triggerfish.errors import ConfigError
from triggerfish.store import schema


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, sa.Connection):
    raise ConfigError(
        "the store's schema is upgraded by Triggerfish itself when it starts; "
        "there is no offline mode or alembic.ini for it"
    )
_run(_connection)

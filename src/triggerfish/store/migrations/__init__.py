"""The store's schema migrations (Alembic), shipped inside the package.

``runner.upgrade_schema`` brings a database to head when the store starts; ``env.py``
is Alembic's environment for it; ``versions/`` holds one module per revision, each
written out by hand (never from ``schema.metadata``, which moves on). A change to
``schema.py`` comes with a new revision that makes it. On SQLite, a revision that
recreates a table other tables point at (batch mode) must mind the foreign keys,
which the store's connections enforce.
"""

from triggerfish.store.migrations.runner import (
    ADVISORY_LOCK_KEY,
    BASELINE,
    alembic_config,
    head,
    schema_revision,
    script_directory,
    upgrade_schema,
)

__all__ = [
    "ADVISORY_LOCK_KEY",
    "BASELINE",
    "alembic_config",
    "head",
    "schema_revision",
    "script_directory",
    "upgrade_schema",
]

"""Revision 0007: weighted aliases, pinned aliases and automatic rollback.

``tf_aliases`` gains the second version an alias may send a share of its invocations
to (``additional_version``, ``weight``), the time ``alias set`` pinned it
(``pinned_at``; NULL while ``live`` follows deploys, as every alias did before), the
automatic rollback rule (``rollback``) and the last rollback the node made
(``rolled_back``). Existing aliases keep their one version and follow as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_alias_routing"
down_revision: str | None = "0006_idempotency"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_COLUMNS = ("additional_version", "weight", "pinned_at", "rollback", "rolled_back")


def upgrade() -> None:
    op.add_column("tf_aliases", sa.Column("additional_version", sa.String(12), nullable=True))
    op.add_column("tf_aliases", sa.Column("weight", sa.Double(), nullable=True))
    op.add_column("tf_aliases", sa.Column("pinned_at", sa.Double(), nullable=True))
    op.add_column("tf_aliases", sa.Column("rollback", _JSON, nullable=True))
    op.add_column("tf_aliases", sa.Column("rolled_back", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tf_aliases") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)

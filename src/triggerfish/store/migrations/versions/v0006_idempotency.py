"""Revision 0006: the idempotency records of functions (``store/idempotency.py``).

``tf_idempotency`` holds one row per function and key: a claim in progress (with the
token of the delivery that holds it, until its lease ends) or a completed record with
the handler's result as JSON text, until it expires. ``expires_at`` is indexed for the
housekeeping pass that forgets expired rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_idempotency"
down_revision: str | None = "0005_chains"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "tf_idempotency",
        sa.Column("function", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_tf_idempotency_expires", "tf_idempotency", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_tf_idempotency_expires", "tf_idempotency")
    op.drop_table("tf_idempotency")

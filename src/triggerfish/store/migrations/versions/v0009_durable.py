"""Revision 0009: durable executions (``durable/store.py``, docs/durable.md).

``tf_durable_executions`` holds one row per execution of a durable function: its input,
its outcome, the generation of its checkpoint tokens and when it must be woken;
``tf_durable_operations`` the operations its SDK checkpointed, each as Lambda's
``Operation`` document, with the time its timer is due (indexed for the leader's pass).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009_durable"
down_revision: str | None = "0008_usage_rollups"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tf_durable_executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(12), nullable=False),
        sa.Column("qualifier", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", _JSON, nullable=True),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("timeout_at", sa.Double(), nullable=False),
        sa.Column("retention", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("wake_at", sa.Double(), nullable=True),
        sa.UniqueConstraint("function", "name", name="uq_tf_durable_executions_name"),
    )
    op.create_index("ix_tf_durable_executions_wake", "tf_durable_executions", ["wake_at"])
    op.create_index(
        "ix_tf_durable_executions_started", "tf_durable_executions", ["function", "started_at"]
    )
    op.create_table(
        "tf_durable_operations",
        sa.Column("execution", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("document", _JSON, nullable=False),
        sa.Column("callback", sa.String(64), nullable=True, unique=True),
        sa.Column("due_at", sa.Double(), nullable=True),
    )
    op.create_index("ix_tf_durable_operations_due", "tf_durable_operations", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_tf_durable_operations_due", "tf_durable_operations")
    op.drop_table("tf_durable_operations")
    op.drop_index("ix_tf_durable_executions_started", "tf_durable_executions")
    op.drop_index("ix_tf_durable_executions_wake", "tf_durable_executions")
    op.drop_table("tf_durable_executions")

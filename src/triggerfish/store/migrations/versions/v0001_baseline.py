"""Revision 0001: the schema of Triggerfish 0.1.0, the release before migrations.

Written out column by column rather than taken from ``schema.metadata``, which moves
on with later revisions. A database that 0.1.0 made has exactly these tables and is
stamped with this revision instead of running it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_baseline"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_NAME = sa.String(64)
_ID = sa.String(160)
_SORTABLE_ID = sa.String(26).with_variant(sa.String(26, collation="C"), "postgresql")

TABLES = (
    "tf_functions",
    "tf_versions",
    "tf_aliases",
    "tf_triggers",
    "tf_invocations",
    "tf_tokens",
    "tf_documents",
)


def upgrade() -> None:
    op.create_table(
        "tf_functions",
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
    )
    op.create_table(
        "tf_versions",
        sa.Column("function", _NAME, sa.ForeignKey("tf_functions.name"), primary_key=True),
        sa.Column("version", sa.String(12), primary_key=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.UniqueConstraint("function", "number", name="uq_tf_versions_number"),
    )
    op.create_index("ix_tf_versions_digest", "tf_versions", ["function", "digest"])
    op.create_table(
        "tf_aliases",
        sa.Column("function", _NAME, sa.ForeignKey("tf_functions.name"), primary_key=True),
        sa.Column("name", _NAME, primary_key=True),
        sa.Column("version", sa.String(12), nullable=False),
    )
    op.create_table(
        "tf_triggers",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("function", _NAME, sa.ForeignKey("tf_functions.name"), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("qualifier", _NAME, nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_tf_triggers_function", "tf_triggers", ["function"])
    op.create_table(
        "tf_invocations",
        sa.Column("id", _SORTABLE_ID, primary_key=True),
        sa.Column("function", _NAME, nullable=False),
        sa.Column("version", sa.String(12), nullable=False),
        sa.Column("trigger", _ID, nullable=True),
        sa.Column("event_ids", _JSON, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("billed_duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("memory_size_mb", sa.Integer(), nullable=False),
        sa.Column("max_memory_used_mb", sa.Integer(), nullable=False),
        sa.Column("init_duration_ms", sa.Double(), nullable=True),
        sa.Column("cold_start", sa.Boolean(), nullable=False),
        sa.Column("error_type", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("stack_trace", _JSON, nullable=False),
        sa.Column("logs", sa.Text(), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("request_bytes", sa.BigInteger(), nullable=False),
        sa.Column("recorded_id", _SORTABLE_ID, nullable=False),
    )
    op.create_index("ix_tf_invocations_function", "tf_invocations", ["function", "id"])
    op.create_index("ix_tf_invocations_recorded", "tf_invocations", ["recorded_id"])
    op.create_index("ix_tf_invocations_trigger", "tf_invocations", ["trigger", "id"])
    op.create_index("ix_tf_invocations_started", "tf_invocations", ["started_at"])
    op.create_table(
        "tf_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("scopes", _JSON, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "tf_documents",
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("body", _JSON, nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    # Children before the table their foreign keys point at.
    for table in reversed(TABLES):
        op.drop_table(table)

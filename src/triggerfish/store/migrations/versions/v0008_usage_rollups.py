"""Revision 0008: the usage of pruned invocation records (``store/retention.py``).

``tf_usage_daily`` keeps, per UTC day, function and version, the sums that cost
reports need (requests, errors, throttled, cold starts, durations, memory times billed
duration) of the invocation records that retention removed, so costs of a period stay
the same after its records are gone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_usage_rollups"
down_revision: str | None = "0007_alias_routing"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "tf_usage_daily",
        sa.Column("day", sa.BigInteger(), primary_key=True),
        sa.Column("function", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(12), primary_key=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("throttled", sa.BigInteger(), nullable=False),
        sa.Column("cold_starts", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("billed_duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("init_duration_ms", sa.Double(), nullable=False),
        sa.Column("mb_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tf_usage_daily")

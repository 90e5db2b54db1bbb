"""Revision 0005: what the chain of an event is drawn from (``store/chains.py``).

``tf_invocations.correlation`` is the ``correlationid`` of the event an invocation
handled (the id of the chain's first event), indexed with the id, so the invocations of
one chain are read by an index range. ``tf_chain_events`` keeps the events of chains:
each event an invocation handled or emitted, once per chain, with its topic, type,
source and time, and the invocation that emitted it. Invocations recorded before this
revision belong to no chain.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_chains"
down_revision: str | None = "0004_part_checksums"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_ID = sa.String(160)
_SORTABLE_ID = sa.String(26).with_variant(sa.String(26, collation="C"), "postgresql")


def upgrade() -> None:
    op.add_column("tf_invocations", sa.Column("correlation", _ID, nullable=True))
    op.create_index(
        "ix_tf_invocations_correlation",
        "tf_invocations",
        ["correlation", "id"],
        sqlite_where=sa.text("correlation IS NOT NULL"),
        postgresql_where=sa.text("correlation IS NOT NULL"),
    )
    op.create_table(
        "tf_chain_events",
        sa.Column("correlation", _ID, primary_key=True),
        sa.Column("id", _ID, primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("time", sa.String(64), nullable=True),
        sa.Column("invocation", _SORTABLE_ID, nullable=True),
        sa.Column("recorded_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_tf_chain_events_id", "tf_chain_events", ["id"])
    op.create_index("ix_tf_chain_events_recorded", "tf_chain_events", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_tf_chain_events_recorded", "tf_chain_events")
    op.drop_index("ix_tf_chain_events_id", "tf_chain_events")
    op.drop_table("tf_chain_events")
    op.drop_index("ix_tf_invocations_correlation", "tf_invocations")
    op.drop_column("tf_invocations", "correlation")

"""Revision 0004: the checksum of each part of a multipart upload.

``tf_parts.meta`` (JSON, empty for parts stored before it) keeps the part's checksum
(``sources/buckets/checksums.py``), from which the checksum of the whole object is
computed when the upload completes. Objects and uploads keep theirs in their ``meta``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_part_checksums"
down_revision: str | None = "0003_buckets"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("tf_parts", sa.Column("meta", _JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("tf_parts", "meta")

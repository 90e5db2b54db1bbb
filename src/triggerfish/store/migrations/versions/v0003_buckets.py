"""Revision 0003: the built-in object store of a cluster.

Buckets, objects, multipart uploads and their parts, the outbox of notifications, the
bytes of blobs in chunks, and the blobs waiting to be collected
(``sources/buckets/postgres_index.py`` and ``postgres_blobs.py``). Names and keys use
the "C" collation on PostgreSQL so that they sort as bytes, which is S3's order.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_buckets"
down_revision: str | None = "0002_cluster"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_BYTES_ORDER = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_BLOB = sa.String(32)
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tf_buckets",
        sa.Column("name", _BYTES_ORDER, primary_key=True),
        sa.Column("created", sa.Double(), nullable=False),
    )
    op.create_table(
        "tf_objects",
        sa.Column("bucket", _BYTES_ORDER, primary_key=True),
        sa.Column("key", _BYTES_ORDER, primary_key=True),
        sa.Column("blob", _BLOB, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("modified", sa.Double(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("meta", _JSON, nullable=False),
    )
    op.create_table(
        "tf_uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("bucket", _BYTES_ORDER, nullable=False),
        sa.Column("key", _BYTES_ORDER, nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("meta", _JSON, nullable=False),
    )
    op.create_index("ix_tf_uploads_bucket", "tf_uploads", ["bucket", "key", "created"])
    op.create_table(
        "tf_parts",
        sa.Column("upload", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("blob", _BLOB, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("modified", sa.Double(), nullable=False),
    )
    op.create_table(
        "tf_bucket_outbox",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("event", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "tf_bucket_blobs",
        sa.Column("blob", _BLOB, primary_key=True),
        sa.Column("start", sa.BigInteger(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    if op.get_context().dialect.name == "postgresql":
        # Object bytes are mostly compressed already (images, archives): store the
        # chunks out of line without trying to compress them again.
        op.execute("ALTER TABLE tf_bucket_blobs ALTER COLUMN data SET STORAGE EXTERNAL")
    op.create_table(
        "tf_bucket_garbage",
        sa.Column("blob", _BLOB, primary_key=True),
        sa.Column("dropped", sa.Double(), nullable=False),
    )
    op.create_index("ix_tf_bucket_garbage_dropped", "tf_bucket_garbage", ["dropped"])


def downgrade() -> None:
    op.drop_index("ix_tf_bucket_garbage_dropped", "tf_bucket_garbage")
    op.drop_index("ix_tf_uploads_bucket", "tf_uploads")
    for table in (
        "tf_bucket_garbage",
        "tf_bucket_blobs",
        "tf_bucket_outbox",
        "tf_parts",
        "tf_uploads",
        "tf_objects",
        "tf_buckets",
    ):
        op.drop_table(table)

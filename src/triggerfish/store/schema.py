"""The control-plane tables, in portable SQLAlchemy Core (SQLite and PostgreSQL).

Times are Unix seconds as double precision. JSON columns are JSONB on PostgreSQL.
Invocations are ordered by their time-sortable id, so the listing indexes lead with
the filter column and end with the id.

Databases get these tables through the revisions in ``migrations/versions/``, never
from this module: a change here needs a new revision that makes it, and the tests fail
while the two differ (``tests/unit/store/test_store_migrations.py``).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB

from triggerfish.ids import ID_LENGTH, new_id
from triggerfish.store.records import (
    AliasRecord,
    FunctionRecord,
    InvocationRecord,
    StoredToken,
    TriggerRecord,
    VersionRecord,
)

metadata = sa.MetaData()

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_NAME = sa.String(64)
_ID = sa.String(160)
# Invocation ids sort by time as bytes; "C" collation keeps PostgreSQL to byte order.
_SORTABLE_ID = sa.String(26).with_variant(sa.String(26, collation="C"), "postgresql")

functions = sa.Table(
    "tf_functions",
    metadata,
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

versions = sa.Table(
    "tf_versions",
    metadata,
    sa.Column("function", _NAME, sa.ForeignKey("tf_functions.name"), primary_key=True),
    sa.Column("version", sa.String(12), primary_key=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("config", _JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("function", "number", name="uq_tf_versions_number"),
    sa.Index("ix_tf_versions_digest", "function", "digest"),
)

aliases = sa.Table(
    "tf_aliases",
    metadata,
    sa.Column("function", _NAME, sa.ForeignKey("tf_functions.name"), primary_key=True),
    sa.Column("name", _NAME, primary_key=True),
    sa.Column("version", sa.String(12), nullable=False),
    # Weighted routing, pinning and automatic rollback (revision 0007).
    sa.Column("additional_version", sa.String(12), nullable=True),
    sa.Column("weight", sa.Double, nullable=True),
    sa.Column("pinned_at", sa.Double, nullable=True),
    sa.Column("rollback", _JSON, nullable=True),
    sa.Column("rolled_back", _JSON, nullable=True),
)

triggers = sa.Table(
    "tf_triggers",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("function", _NAME, sa.ForeignKey("tf_functions.name"), nullable=False),
    sa.Column("topic", sa.String(128), nullable=False),
    sa.Column("qualifier", _NAME, nullable=False),
    sa.Column("config", _JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Index("ix_tf_triggers_function", "function"),
)

# No foreign key to functions: the history of a deleted function stays readable.
invocations = sa.Table(
    "tf_invocations",
    metadata,
    sa.Column("id", _SORTABLE_ID, primary_key=True),
    sa.Column("function", _NAME, nullable=False),
    sa.Column("version", sa.String(12), nullable=False),
    sa.Column("trigger", _ID, nullable=True),
    sa.Column("event_ids", _JSON, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("duration_ms", sa.Double, nullable=False),
    sa.Column("billed_duration_ms", sa.BigInteger, nullable=False),
    sa.Column("memory_size_mb", sa.Integer, nullable=False),
    sa.Column("max_memory_used_mb", sa.Integer, nullable=False),
    sa.Column("init_duration_ms", sa.Double, nullable=True),
    sa.Column("cold_start", sa.Boolean, nullable=False),
    sa.Column("error_type", sa.Text, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("stack_trace", _JSON, nullable=False),
    sa.Column("logs", sa.Text, nullable=False),
    sa.Column("result", sa.LargeBinary, nullable=True),
    sa.Column("request_bytes", sa.BigInteger, nullable=False),
    # When the record was written (time-sortable, increasing): the cursor for following
    # new records, which arrive in order of completion, not of start.
    sa.Column("recorded_id", _SORTABLE_ID, nullable=False),
    # The ``correlationid`` of the event handled: the chain it belongs to (revision 0005).
    sa.Column("correlation", _ID, nullable=True),
    sa.Index("ix_tf_invocations_function", "function", "id"),
    sa.Index("ix_tf_invocations_recorded", "recorded_id"),
    sa.Index("ix_tf_invocations_trigger", "trigger", "id"),
    sa.Index("ix_tf_invocations_started", "started_at"),
    # Partial: a direct invocation that starts no chain costs no index entry.
    sa.Index(
        "ix_tf_invocations_correlation",
        "correlation",
        "id",
        sqlite_where=sa.text("correlation IS NOT NULL"),
        postgresql_where=sa.text("correlation IS NOT NULL"),
    ),
)

# The events of chains (revision 0005): each event an invocation handled or emitted,
# once per chain; ``invocation`` is the one that emitted it, if one did.
chain_events = sa.Table(
    "tf_chain_events",
    metadata,
    sa.Column("correlation", _ID, primary_key=True),
    sa.Column("id", _ID, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("time", sa.String(64), nullable=True),
    sa.Column("invocation", _SORTABLE_ID, nullable=True),
    sa.Column("recorded_at", sa.Double, nullable=False),
    sa.Index("ix_tf_chain_events_id", "id"),
    sa.Index("ix_tf_chain_events_recorded", "recorded_at"),
)

# The usage of invocation records pruned by retention (revision 0008,
# ``store/retention.py``): per UTC day (its first second), function and version, the
# sums that cost reports read with those of the records still kept.
usage_daily = sa.Table(
    "tf_usage_daily",
    metadata,
    sa.Column("day", sa.BigInteger, primary_key=True),
    sa.Column("function", _NAME, primary_key=True),
    sa.Column("version", sa.String(12), primary_key=True),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("throttled", sa.BigInteger, nullable=False),
    sa.Column("cold_starts", sa.BigInteger, nullable=False),
    sa.Column("duration_ms", sa.Double, nullable=False),
    sa.Column("billed_duration_ms", sa.BigInteger, nullable=False),
    sa.Column("init_duration_ms", sa.Double, nullable=False),
    sa.Column("mb_ms", sa.BigInteger, nullable=False),
)

tokens = sa.Table(
    "tf_tokens",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("scopes", _JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)


def function_record(row: Any) -> FunctionRecord:
    return FunctionRecord(name=row.name, created_at=row.created_at, updated_at=row.updated_at)


def version_record(row: Any) -> VersionRecord:
    return VersionRecord(
        function=row.function,
        version=row.version,
        number=row.number,
        digest=row.digest,
        config=dict(row.config),
        created_at=row.created_at,
    )


def alias_record(row: Any) -> AliasRecord:
    return AliasRecord(
        function=row.function,
        name=row.name,
        version=row.version,
        additional_version=row.additional_version,
        weight=row.weight or 0.0,
        pinned_at=row.pinned_at,
        rollback=None if row.rollback is None else dict(row.rollback),
        rolled_back=None if row.rolled_back is None else dict(row.rolled_back),
    )


def trigger_record(row: Any) -> TriggerRecord:
    return TriggerRecord(
        id=row.id,
        function=row.function,
        topic=row.topic,
        qualifier=row.qualifier,
        config=dict(row.config),
        created_at=row.created_at,
    )


def trigger_row(record: TriggerRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "function": record.function,
        "topic": record.topic,
        "qualifier": record.qualifier,
        "config": record.config,
        "created_at": record.created_at,
    }


# ``events`` is written to ``tf_chain_events``, not to a column of the record's row.
_INVOCATION_FIELDS = tuple(
    f.name for f in dataclasses.fields(InvocationRecord) if f.name != "events"
)


def invocation_row(record: InvocationRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _INVOCATION_FIELDS}
    row["event_ids"] = list(record.event_ids)
    row["stack_trace"] = list(record.stack_trace)
    row["recorded_id"] = record.recorded_id or new_id()
    return row


def invocation_insert(dialect: sa.Dialect) -> tuple[str, tuple[str, ...]]:
    """The raw ``INSERT`` of one invocation row in ``dialect``'s SQL and paramstyle,
    and the order of its parameters (see ``invocation_values``)."""
    compiled = invocations.insert().compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup or ())


def invocation_values(
    record: InvocationRecord, recorded_id: str, *, flag: Any = int
) -> tuple[Any, ...]:
    """One row for the raw ``INSERT`` on SQLite, in table order: JSON columns as text
    (what ``sa.JSON`` stores there), the flag as 0 or 1 (``flag=bool``: as a boolean,
    for PostgreSQL's ``COPY``)."""
    # Most records have no event ids (direct invocations) and no stack trace: "[]" is
    # what ``orjson`` writes for those, without the call.
    event_ids = record.event_ids
    stack_trace = record.stack_trace
    return (
        record.id,
        record.function,
        record.version,
        record.trigger,
        orjson.dumps(event_ids).decode() if event_ids else "[]",
        record.attempt,
        record.status,
        record.started_at,
        record.duration_ms,
        record.billed_duration_ms,
        record.memory_size_mb,
        record.max_memory_used_mb,
        record.init_duration_ms,
        flag(record.cold_start),
        record.error_type,
        record.error_message,
        orjson.dumps(stack_trace).decode() if stack_trace else "[]",
        record.logs,
        record.result,
        record.request_bytes,
        recorded_id,
        record.correlation,
    )


#: The parameter order ``invocation_values`` follows.
INVOCATION_VALUES_ORDER = (
    *("id", "function", "version", "trigger", "event_ids", "attempt", "status"),
    *("started_at", "duration_ms", "billed_duration_ms", "memory_size_mb"),
    *("max_memory_used_mb", "init_duration_ms", "cold_start", "error_type"),
    *("error_message", "stack_trace", "logs", "result", "request_bytes", "recorded_id"),
    "correlation",
)


def invocation_insert_sqlite() -> str:
    """The raw ``INSERT`` of one invocation row for the ``sqlite3`` module."""
    sql, order = invocation_insert(sqlite.dialect())
    if order != INVOCATION_VALUES_ORDER:  # pragma: no cover - schema drift
        raise AssertionError(f"invocation columns changed: {order}")
    return sql


_JSON_COLUMNS = ("event_ids", "stack_trace")


def invocation_batch_insert() -> str:
    """The SQLite ``INSERT`` of a whole batch of invocation records: ``?1`` is the batch
    as one JSON array of arrays in table order (``invocation_batch_document``), ``?2``
    the ``recorded_id`` of each record, one after the other. One parameter and one step
    for the batch: rows bound one by one took the interpreter's lock from the event
    loop's thread, 20 times a millisecond. SQL converts the fields: a JSON flag reads as
    0 or 1, a JSON array as its text (what ``sa.JSON`` stores), the result as a blob."""

    def column(index: int, name: str) -> str:
        if name in _JSON_COLUMNS:
            return f"value -> {index}"
        if name == "result":
            return f"CAST(value ->> {index} AS BLOB)"
        if name == "recorded_id":
            stamped = f"substr(?2, key * {ID_LENGTH} + 1, {ID_LENGTH})"
            return f"coalesce(nullif(value ->> {index}, ''), {stamped})"
        return f"value ->> {index}"

    columns = ", ".join(INVOCATION_VALUES_ORDER)
    values = ", ".join(column(index, name) for index, name in enumerate(INVOCATION_VALUES_ORDER))
    # MATERIALIZED: each row's JSON is then made once, not once per column read from
    # it (which cost SQLite 13 microseconds a record instead of 8). The document comes as
    # bytes, and as text, not as a blob, which newer SQLite reads as JSONB.
    rows = "SELECT key, value FROM json_each(CAST(?1 AS TEXT))"
    return (
        f"INSERT INTO tf_invocations ({columns}) "
        f"WITH batch AS MATERIALIZED ({rows}) SELECT {values} FROM batch"
    )


def invocation_batch_insert_postgresql() -> str:
    """``invocation_batch_insert`` for PostgreSQL (asyncpg's ``$n`` parameters): ``$1``
    is the document as UTF-8 bytes, ``$2`` the ids. The rows are elements of one JSONB
    value, each field cast to its column's type."""

    def column(index: int, name: str) -> str:
        kind = invocations.c[name].type
        if name in _JSON_COLUMNS:
            return f"row -> {index}"
        if isinstance(kind, sa.LargeBinary):
            return f"convert_to(row ->> {index}, 'UTF8')"
        if name == "recorded_id":
            stamped = f"substr($2, (number - 1)::integer * {ID_LENGTH} + 1, {ID_LENGTH})"
            return f"coalesce(nullif(row ->> {index}, ''), {stamped})"
        if isinstance(kind, sa.Boolean):
            return f"(row ->> {index})::boolean"
        if isinstance(kind, sa.BigInteger):
            return f"(row ->> {index})::bigint"
        if isinstance(kind, sa.Integer):
            return f"(row ->> {index})::integer"
        if isinstance(kind, sa.Double):
            return f"(row ->> {index})::double precision"
        return f"row ->> {index}"

    columns = ", ".join(INVOCATION_VALUES_ORDER)
    values = ", ".join(column(index, name) for index, name in enumerate(INVOCATION_VALUES_ORDER))
    elements = "jsonb_array_elements(convert_from($1, 'UTF8')::jsonb)"
    rows = f"{elements} WITH ORDINALITY AS batch(row, number)"
    return f"INSERT INTO tf_invocations ({columns}) SELECT {values} FROM {rows}"


_values_of = operator.attrgetter(*INVOCATION_VALUES_ORDER)


def invocation_batch_document(records: Sequence[InvocationRecord]) -> bytes | None:
    """The parameter ``?1`` of ``invocation_batch_insert`` (``$1`` of the PostgreSQL
    one), taken and encoded in C, with no Python code a record but the ``decode`` of a
    result. None when a result is not UTF-8 text, which JSON cannot carry, or when a
    field holds a NUL, where SQLite's JSON functions cut a text short (and PostgreSQL's
    JSONB refuses it): such a batch goes row by row."""
    try:
        document = orjson.dumps(list(map(_values_of, records)), default=bytes.decode)
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, UnicodeDecodeError):
            return None
        raise
    return None if b"\\u0000" in document else document


def invocation_record(row: Any) -> InvocationRecord:
    values = {name: getattr(row, name) for name in _INVOCATION_FIELDS}
    values["event_ids"] = tuple(row.event_ids)
    values["stack_trace"] = list(row.stack_trace)
    values["cold_start"] = bool(row.cold_start)
    values["result"] = bytes(row.result) if row.result is not None else None
    return InvocationRecord(**values)


def token_record(row: Any) -> StoredToken:
    return StoredToken(
        id=row.id,
        name=row.name,
        secret_hash=row.secret_hash,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        revoked=bool(row.revoked),
    )


documents = sa.Table(
    "tf_documents",
    metadata,
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("body", _JSON, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

# -- the tables the nodes of a cluster share (revision 0002) ---------------------------

nodes = sa.Table(
    "tf_nodes",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("address", sa.String(512), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("heartbeat_at", sa.Double, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("info", _JSON, nullable=False),
)

leases = sa.Table(
    "tf_leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)

# Content-addressed: a digest names one content forever, so rows are never updated.
blobs = sa.Table(
    "tf_blobs",
    metadata,
    sa.Column("digest", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

generations = sa.Table(
    "tf_generations",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# -- the built-in object store of a cluster (revision 0003) ----------------------------
# Used only when the store is PostgreSQL (``sources/buckets/postgres_index.py``); an
# SQLite store has the tables too, empty. Names and keys sort as bytes ("C"), which is
# S3's listing order.

_BYTES_ORDER = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_BLOB = sa.String(32)
# BIGINT on PostgreSQL; SQLite counts only an INTEGER primary key up by itself.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

buckets = sa.Table(
    "tf_buckets",
    metadata,
    sa.Column("name", _BYTES_ORDER, primary_key=True),
    sa.Column("created", sa.Double, nullable=False),
)

objects = sa.Table(
    "tf_objects",
    metadata,
    sa.Column("bucket", _BYTES_ORDER, primary_key=True),
    sa.Column("key", _BYTES_ORDER, primary_key=True),
    sa.Column("blob", _BLOB, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("modified", sa.Double, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("meta", _JSON, nullable=False),
)

uploads = sa.Table(
    "tf_uploads",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("bucket", _BYTES_ORDER, nullable=False),
    sa.Column("key", _BYTES_ORDER, nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("meta", _JSON, nullable=False),
    sa.Index("ix_tf_uploads_bucket", "bucket", "key", "created"),
)

parts = sa.Table(
    "tf_parts",
    metadata,
    sa.Column("upload", sa.String(64), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("blob", _BLOB, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("modified", sa.Double, nullable=False),
    sa.Column("meta", _JSON, nullable=True),  # the part's checksum
)

bucket_outbox = sa.Table(
    "tf_bucket_outbox",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("event", sa.LargeBinary, nullable=False),
)

# The bytes of a blob in chunks: ``start`` is where a chunk begins in the blob.
bucket_blobs = sa.Table(
    "tf_bucket_blobs",
    metadata,
    sa.Column("blob", _BLOB, primary_key=True),
    sa.Column("start", sa.BigInteger, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# Blobs that no object or part names any more, kept for readers still streaming them
# until a grace period after ``dropped``.
bucket_garbage = sa.Table(
    "tf_bucket_garbage",
    metadata,
    sa.Column("blob", _BLOB, primary_key=True),
    sa.Column("dropped", sa.Double, nullable=False),
    sa.Index("ix_tf_bucket_garbage_dropped", "dropped"),
)

# -- idempotency records of functions (revision 0006, ``store/idempotency.py``) --------
# A claim in progress (``completed`` false) expires when its lease ends; a completed
# record, with its result as JSON text, when the function said it should.
idempotency = sa.Table(
    "tf_idempotency",
    metadata,
    sa.Column("function", _NAME, primary_key=True),
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("token", sa.String(32), nullable=False),
    sa.Column("completed", sa.Boolean, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("claimed_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Index("ix_tf_idempotency_expires", "expires_at"),
)

# -- durable executions (revision 0009, ``durable/store.py``) ----------------------------
# One row per execution, and one per operation its SDK checkpointed, kept as the wire
# document of Lambda's ``Operation``. ``due_at``: when a wait ends, a step's retry is due
# or a callback times out; ``wake_at``: when a running execution is run again should its
# invocation never report back (a crashed node).
durable_executions = sa.Table(
    "tf_durable_executions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("function", _NAME, nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.String(12), nullable=False),
    sa.Column("qualifier", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", _JSON, nullable=True),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("ended_at", sa.Double, nullable=True),
    sa.Column("timeout_at", sa.Double, nullable=False),
    sa.Column("retention", sa.Integer, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("wake_at", sa.Double, nullable=True),
    sa.UniqueConstraint("function", "name", name="uq_tf_durable_executions_name"),
    sa.Index("ix_tf_durable_executions_wake", "wake_at"),
    sa.Index("ix_tf_durable_executions_started", "function", "started_at"),
)

durable_operations = sa.Table(
    "tf_durable_operations",
    metadata,
    sa.Column("execution", sa.String(32), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("document", _JSON, nullable=False),
    sa.Column("callback", sa.String(64), nullable=True, unique=True),
    sa.Column("due_at", sa.Double, nullable=True),
    sa.Index("ix_tf_durable_operations_due", "due_at"),
)

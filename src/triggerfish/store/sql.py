"""``SqlStore``: the control-plane state (functions, versions, aliases, triggers,
invocations, tokens) over SQLAlchemy Core with an async driver.

SQLite (``sqlite+aiosqlite:///path/store.db``, the embedded default) and PostgreSQL
(``postgresql+asyncpg://...``) run the same statements (see ``engine.Database`` for the
SQLite settings). ``start()`` upgrades the schema to the newest revision this release
knows (``migrations``). Each method is one transaction. Driver errors become ``AdapterError``
(``ConflictError`` for a broken uniqueness rule); a missing thing is a ``NotFoundError``
whose message says what exists instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from triggerfish.errors import AdapterError, ConflictError, NotFoundError, ValidationError
from triggerfish.ids import new_id
from triggerfish.store import schema as t
from triggerfish.store.chains import Chains
from triggerfish.store.cluster import Cluster
from triggerfish.store.documents import Documents, Transaction
from triggerfish.store.engine import Database
from triggerfish.store.idempotency import IdempotencyRecords
from triggerfish.store.migrations import schema_revision, upgrade_schema
from triggerfish.store.records import (
    LIVE,
    STATUSES,
    AliasRecord,
    FunctionRecord,
    InvocationRecord,
    StoredToken,
    TriggerRecord,
    VersionRecord,
)
from triggerfish.store.sqlite_records import SqliteRecordWriter, sqlite_insert

LATEST = "$LATEST"
_INSERT_BATCH_POSTGRESQL = t.invocation_batch_insert_postgresql()
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSION_RE = re.compile(r"^[0-9a-f]{12}$")


class SqlStore:
    """The control-plane store; ``start()`` before use, ``stop()`` after."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 10.0,
        echo: bool = False,
        clock: Callable[[], float] = time.time,
        vacuum: bool = True,
    ) -> None:
        self.url = url
        self._db = Database(url, busy_timeout=busy_timeout, echo=echo, vacuum=vacuum)
        self._read = self._db.read
        self._write = self._db.write
        self.documents = Documents(self._read, self._write)
        self.cluster = Cluster(self._read, self._write, clock=clock)
        self.chains = Chains(self._read, self._write, clock=clock)
        self.idempotency = IdempotencyRecords(self._read, self._write, clock=clock)
        self._records: SqliteRecordWriter | None = None

    @property
    def transactions(self) -> tuple[Transaction, Transaction]:
        """Its read and write transactions, for parts that keep tables of their own in
        the same database (the shared buckets of a cluster)."""
        return self._read, self._write

    async def start(self) -> None:
        """Connect and upgrade the schema to head (``ConfigError`` when a newer
        Triggerfish has already upgraded it further)."""
        await self._db.open()
        try:
            async with self._write() as conn:
                await upgrade_schema(conn, where=self._db.safe_url)
        except BaseException:
            await self._db.close()
            raise
        path = self._db.sqlite_file
        if path is not None:
            self._records = SqliteRecordWriter(path, busy_timeout_ms=self._db.busy_timeout_ms)

    async def stop(self) -> None:
        records, self._records = self._records, None
        try:
            if records is not None:
                await records.close()
        finally:
            await self._db.close()

    async def schema_revision(self) -> str | None:
        """The schema revision of the database (after ``start()``: the newest one)."""
        async with self._read() as conn:
            return await schema_revision(conn)

    async def __aenter__(self) -> SqlStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- functions and versions ----------------------------------------------------

    async def put_function_version(
        self, function: str, config: dict[str, Any], digest: str, version: str
    ) -> VersionRecord:
        """Add a version (numbered after the last), creating the function, and point
        ``live`` at it unless ``alias set`` pinned it. A version already stored under
        the same digest is returned."""
        now = time.time()
        async with self._write() as conn:
            found = await conn.execute(
                sa.select(t.functions.c.name)
                .where(t.functions.c.name == function)
                .with_for_update()
            )
            if found.first() is None:
                await conn.execute(
                    t.functions.insert().values(name=function, created_at=now, updated_at=now)
                )
            else:
                await conn.execute(
                    t.functions.update()
                    .where(t.functions.c.name == function)
                    .values(updated_at=now)
                )
            row = (
                await conn.execute(
                    sa.select(t.versions).where(
                        t.versions.c.function == function, t.versions.c.version == version
                    )
                )
            ).first()
            if row is not None:
                if row.digest != digest:
                    raise ConflictError(
                        f"version {version} of {function!r} exists with another digest"
                    )
                record = t.version_record(row)
            else:
                last = await conn.scalar(
                    sa.select(sa.func.max(t.versions.c.number)).where(
                        t.versions.c.function == function
                    )
                )
                record = VersionRecord(
                    function=function,
                    version=version,
                    number=(last or 0) + 1,
                    digest=digest,
                    config=dict(config),
                    created_at=now,
                )
                await conn.execute(
                    t.versions.insert().values(
                        function=function,
                        version=version,
                        number=record.number,
                        digest=digest,
                        config=record.config,
                        created_at=now,
                    )
                )
            await self._follow(conn, function, record.version)
        return record

    async def follow_deploy(self, function: str, version: str) -> AliasRecord:
        """Point ``live`` at ``version`` if it follows deploys (no ``alias set`` pinned
        it); ``live`` as it is after that."""
        async with self._write() as conn:
            await self._follow(conn, function, version)
            return await self._alias(conn, function, LIVE)

    async def find_version_by_digest(self, function: str, digest: str) -> VersionRecord | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.versions).where(
                        t.versions.c.function == function, t.versions.c.digest == digest
                    )
                )
            ).first()
        return t.version_record(row) if row is not None else None

    async def get_function(self, name: str) -> FunctionRecord:
        async with self._read() as conn:
            return await self._function(conn, name)

    async def list_functions(self) -> list[FunctionRecord]:
        async with self._read() as conn:
            rows = await conn.execute(sa.select(t.functions).order_by(t.functions.c.name))
            return [t.function_record(row) for row in rows]

    async def delete_function(self, name: str) -> None:
        """Delete a function with its versions, aliases and triggers (not its invocations)."""
        async with self._write() as conn:
            await self._function(conn, name)
            for table in (t.triggers, t.aliases, t.versions):
                await conn.execute(table.delete().where(table.c.function == name))
            await conn.execute(t.functions.delete().where(t.functions.c.name == name))

    async def get_version(self, function: str, version_or_number: str | int) -> VersionRecord:
        """A version by its id (12 hex characters) or its number (``3`` or ``"3"``)."""
        async with self._read() as conn:
            await self._function(conn, function)
            return await self._version(conn, function, version_or_number)

    async def list_versions(self, function: str) -> list[VersionRecord]:
        async with self._read() as conn:
            await self._function(conn, function)
            rows = await conn.execute(
                sa.select(t.versions)
                .where(t.versions.c.function == function)
                .order_by(t.versions.c.number)
            )
            return [t.version_record(row) for row in rows]

    # -- aliases -------------------------------------------------------------------

    async def set_alias(
        self,
        function: str,
        alias: str,
        version: str | int,
        *,
        additional: str | int | None = None,
        weight: float = 0.0,
        rollback: dict[str, Any] | None = None,
    ) -> AliasRecord:
        """Point ``alias`` at a version (by id or number), creating the alias if needed,
        and pin it: deploys no longer move it (``follow_alias`` undoes that). With
        ``additional``, that version takes ``weight`` of the invocations; ``rollback``
        is the rule the node watches it by. A later set forgets an earlier rollback."""
        _check_alias(alias)
        async with self._write() as conn:
            await self._function(conn, function)
            record = await self._version(conn, function, version)
            extra = None
            if additional is not None:
                try:
                    extra = (await self._version(conn, function, additional)).version
                except NotFoundError as exc:
                    raise ValidationError(f"routing: {exc}", field="routing") from None
                if extra == record.version:
                    raise ValidationError(
                        f"routing: version {record.number} is the alias's main version; "
                        "give another version a weight, or no routing",
                        field="routing",
                    )
            values = {
                "version": record.version,
                "additional_version": extra,
                "weight": weight if extra is not None else None,
                "pinned_at": time.time(),
                "rollback": sa.null() if rollback is None or extra is None else rollback,
                "rolled_back": sa.null(),
            }
            await self._upsert_alias(conn, function, alias, values)
            return await self._alias(conn, function, alias)

    async def follow_alias(self, function: str, alias: str) -> AliasRecord:
        """Let deploys move ``alias`` again (``live`` only: the alias deploys move). It
        stays where it is until the next deploy that makes or names another version."""
        if alias != LIVE:
            raise ValidationError(
                f"only {LIVE!r} follows deploys; {alias!r} moves with `alias set` alone",
                field="alias",
            )
        async with self._write() as conn:
            await self._function(conn, function)
            await conn.execute(
                t.aliases.update()
                .where(t.aliases.c.function == function, t.aliases.c.name == alias)
                .values(pinned_at=None)
            )
            return await self._alias(conn, function, alias)

    async def roll_back_alias(
        self, function: str, alias: str, additional: str, seen: dict[str, Any]
    ) -> AliasRecord | None:
        """Send every invocation of ``alias`` to its main version again and keep
        ``seen`` as its last rollback, if it still routes to ``additional`` (a user
        may have moved it since it was read); the alias after, or None when it had
        moved."""
        a = t.aliases.c
        async with self._write() as conn:
            moved = await conn.execute(
                t.aliases.update()
                .where(a.function == function, a.name == alias, a.additional_version == additional)
                .values(additional_version=None, weight=None, rolled_back=seen)
            )
            if moved.rowcount == 0:
                return None
            return await self._alias(conn, function, alias)

    async def watched_aliases(self) -> list[AliasRecord]:
        """The aliases of every function that route to a second version under a
        rollback rule."""
        a = t.aliases.c
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(t.aliases)
                .where(a.additional_version.is_not(None), a.rollback.is_not(None))
                .order_by(a.function, a.name)
            )
            return [t.alias_record(row) for row in rows]

    async def delete_alias(self, function: str, alias: str) -> None:
        if alias == LIVE:
            raise ValidationError("the 'live' alias cannot be deleted", field="alias")
        async with self._write() as conn:
            result = await conn.execute(
                t.aliases.delete().where(
                    t.aliases.c.function == function, t.aliases.c.name == alias
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"function {function!r} has no alias {alias!r}")

    async def list_aliases(self, function: str) -> list[AliasRecord]:
        async with self._read() as conn:
            await self._function(conn, function)
            rows = await conn.execute(
                sa.select(t.aliases)
                .where(t.aliases.c.function == function)
                .order_by(t.aliases.c.name)
            )
            return [t.alias_record(row) for row in rows]

    async def resolve(self, function: str, qualifier: str = LIVE) -> VersionRecord:
        """The version that ``qualifier`` names: an alias, a version id, a version number,
        or ``$LATEST`` (the newest version). A weighted alias names its main version."""
        return (await self.resolve_routing(function, qualifier))[0]

    async def resolve_routing(
        self, function: str, qualifier: str = LIVE
    ) -> tuple[VersionRecord, VersionRecord | None, float]:
        """``resolve``, with the second version a weighted alias routes to and its
        weight (None and 0.0 for anything else)."""
        async with self._read() as conn:
            await self._function(conn, function)
            target = (
                await conn.execute(
                    sa.select(
                        t.aliases.c.version, t.aliases.c.additional_version, t.aliases.c.weight
                    ).where(t.aliases.c.function == function, t.aliases.c.name == qualifier)
                )
            ).first()
            if target is not None:
                main = await self._version(conn, function, target.version)
                if target.additional_version is None:
                    return main, None, 0.0
                extra = await self._version(conn, function, target.additional_version)
                return main, extra, float(target.weight or 0.0)
            return await self._resolve_other(conn, function, qualifier), None, 0.0

    async def _resolve_other(
        self, conn: AsyncConnection, function: str, qualifier: str
    ) -> VersionRecord:
        if qualifier == LATEST:
            row = (
                await conn.execute(
                    sa.select(t.versions)
                    .where(t.versions.c.function == function)
                    .order_by(t.versions.c.number.desc())
                    .limit(1)
                )
            ).first()
            if row is not None:
                return t.version_record(row)
        elif qualifier.isdigit() or _VERSION_RE.match(qualifier):
            return await self._version(conn, function, qualifier)
        aliases = await conn.scalars(
            sa.select(t.aliases.c.name).where(t.aliases.c.function == function)
        )
        known = ", ".join(sorted(aliases)) or "none"
        raise NotFoundError(
            f"function {function!r} has no alias or version {qualifier!r} "
            f"(aliases: {known}; or give a version number or id)"
        )

    # -- triggers ------------------------------------------------------------------

    async def replace_triggers(
        self, function: str, records: Sequence[TriggerRecord]
    ) -> tuple[list[str], list[str]]:
        """Make ``records`` the triggers of ``function``; returns the ids added and the ids
        removed. A kept trigger whose topic or settings changed is updated in place."""
        ids = [record.id for record in records]
        if len(set(ids)) != len(ids):
            raise ValidationError(f"duplicate trigger ids for {function!r}: {sorted(ids)}")
        for record in records:
            if record.function != function:
                raise ValidationError(f"trigger {record.id!r} belongs to {record.function!r}")
        now = time.time()
        async with self._write() as conn:
            await self._function(conn, function)
            rows = await conn.execute(
                sa.select(t.triggers).where(t.triggers.c.function == function)
            )
            old = {row.id: t.trigger_record(row) for row in rows}
            added: list[str] = []
            for record in records:
                current = old.get(record.id)
                if current is None:
                    row = t.trigger_row(record)
                    row["created_at"] = record.created_at or now
                    await conn.execute(t.triggers.insert().values(**row))
                    added.append(record.id)
                elif (current.topic, current.qualifier, current.config) != (
                    record.topic,
                    record.qualifier,
                    record.config,
                ):
                    await conn.execute(
                        t.triggers.update()
                        .where(t.triggers.c.id == record.id)
                        .values(
                            topic=record.topic, qualifier=record.qualifier, config=record.config
                        )
                    )
            removed = sorted(set(old) - set(ids))
            if removed:
                await conn.execute(t.triggers.delete().where(t.triggers.c.id.in_(removed)))
        return added, removed

    async def list_triggers(self, function: str | None = None) -> list[TriggerRecord]:
        query = sa.select(t.triggers).order_by(t.triggers.c.id)
        if function is not None:
            query = query.where(t.triggers.c.function == function)
        async with self._read() as conn:
            return [t.trigger_record(row) for row in await conn.execute(query)]

    async def get_trigger(self, id: str) -> TriggerRecord:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.triggers).where(t.triggers.c.id == id))).first()
        if row is None:
            raise NotFoundError(f"no trigger {id!r} (trigger ids are 'function.trigger-name')")
        return t.trigger_record(row)

    # -- invocations ---------------------------------------------------------------

    async def record_invocations(self, records: Sequence[InvocationRecord]) -> None:
        """Store a batch of invocation records in one statement. Each gets its
        ``recorded_id`` inside the write transaction, so those ids increase in the
        order the batches commit. On an SQLite file the batch goes to the store's own
        record writer (``SqliteRecordWriter``): one JSON document, one statement (``schema.
        invocation_batch_insert``), one hand-off of the event loop; the expression layer
        spent about 25 microseconds a record, the pooled connection 400 a batch."""
        if not records:
            return
        if self._records is not None:
            await self._records.write(records)
            return
        async with self._write() as conn:
            dialect = conn.dialect.name
            if dialect == "sqlite":  # in memory or by URI: the pooled connection
                document = t.invocation_batch_document(records)
                await conn.exec_driver_sql(*sqlite_insert(records, document))
                return
            if dialect == "postgresql" and _copyable(records):
                await _copy_records(conn, records)
                return
            document = t.invocation_batch_document(records) if dialect == "postgresql" else None
            if document is not None:
                stamps = "".join(new_id.many(len(records)))
                await conn.exec_driver_sql(_INSERT_BATCH_POSTGRESQL, (document, stamps))
            else:
                rows = [t.invocation_row(record) for record in records]
                await conn.execute(t.invocations.insert(), rows)

    async def list_invocations(
        self,
        function: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        trigger: str | None = None,
        limit: int = 100,
        before: str | None = None,
        after: str | None = None,
    ) -> list[InvocationRecord]:
        """Newest first; ``before`` is the cursor for the next page: the id of the last
        record of a page. With ``after`` instead, in the order they were written, from
        just after that record's ``recorded_id`` (``"0"`` starts at the beginning), to
        follow new invocations as they come without missing one that started earlier
        but ended later. ``since``/``until`` bound ``started_at``."""
        c = t.invocations.c
        order = c.recorded_id.asc() if after is not None else c.id.desc()
        query = sa.select(t.invocations).order_by(order).limit(max(0, limit))
        if after is not None:
            query = query.where(c.recorded_id > after)
        if function is not None:
            query = query.where(c.function == function)
        if status is not None:
            query = query.where(c.status == status)
        if trigger is not None:
            query = query.where(c.trigger == trigger)
        if since is not None:
            query = query.where(c.started_at >= since)
        if until is not None:
            query = query.where(c.started_at < until)
        if before is not None:
            query = query.where(c.id < before)
        async with self._read() as conn:
            return [t.invocation_record(row) for row in await conn.execute(query)]

    async def get_invocation(self, id: str) -> InvocationRecord:
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.invocations).where(t.invocations.c.id == id))
            ).first()
        if row is None:
            raise NotFoundError(f"no invocation {id!r}")
        return t.invocation_record(row)

    async def invocation_stats(
        self, function: str | None = None, since: float | None = None
    ) -> dict[str, int]:
        """How many invocations ended in each status (every status is present)."""
        c = t.invocations.c
        query = sa.select(c.status, sa.func.count()).group_by(c.status)
        if function is not None:
            query = query.where(c.function == function)
        if since is not None:
            query = query.where(c.started_at >= since)
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        async with self._read() as conn:
            for status, count in await conn.execute(query):
                counts[status] = int(count)
        return counts

    async def delete_invocations(self, until: float) -> int:
        """Forget invocations that started before ``until``, and the events of chains
        kept before then; returns how many invocations."""
        async with self._write() as conn:
            result = await conn.execute(
                t.invocations.delete().where(t.invocations.c.started_at < until)
            )
            deleted = int(result.rowcount)
        await self.chains.forget(until)
        return deleted

    # -- tokens --------------------------------------------------------------------

    async def put_token(self, token: StoredToken) -> StoredToken:
        async with self._write() as conn:
            await conn.execute(
                t.tokens.insert().values(
                    id=token.id,
                    name=token.name,
                    secret_hash=token.secret_hash,
                    scopes=list(token.scopes),
                    created_at=token.created_at,
                    revoked=token.revoked,
                )
            )
        return token

    async def get_token(self, id: str) -> StoredToken:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.tokens).where(t.tokens.c.id == id))).first()
        if row is None:
            raise NotFoundError(f"no API token {id!r}")
        return t.token_record(row)

    async def list_tokens(self) -> list[StoredToken]:
        async with self._read() as conn:
            rows = await conn.execute(sa.select(t.tokens).order_by(t.tokens.c.created_at))
            return [t.token_record(row) for row in rows]

    async def revoke_token(self, id: str) -> StoredToken:
        async with self._write() as conn:
            result = await conn.execute(
                t.tokens.update().where(t.tokens.c.id == id).values(revoked=True)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no API token {id!r}")
            row = (await conn.execute(sa.select(t.tokens).where(t.tokens.c.id == id))).one()
        return t.token_record(row)

    # -- helpers (inside a transaction) --------------------------------------------

    async def _function(self, conn: AsyncConnection, name: str) -> FunctionRecord:
        row = (await conn.execute(sa.select(t.functions).where(t.functions.c.name == name))).first()
        if row is None:
            raise NotFoundError(
                f"no function {name!r}; deploy it first (`triggerfish deploy`), "
                "or list functions with `triggerfish ls`"
            )
        return t.function_record(row)

    async def _version(
        self, conn: AsyncConnection, function: str, version_or_number: str | int
    ) -> VersionRecord:
        c = t.versions.c
        key = version_or_number
        # A 12-character hex string is a version id even when all its characters are digits.
        by_number = isinstance(key, int) or (key.isdigit() and not _VERSION_RE.match(key))
        where = c.number == int(key) if by_number else c.version == key
        row = (
            await conn.execute(sa.select(t.versions).where(c.function == function, where))
        ).first()
        if row is None:
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(t.versions).where(c.function == function)
            )
            raise NotFoundError(
                f"function {function!r} has no version {str(key)!r} "
                f"(it has versions 1 to {count}, by number or 12-character id)"
                if count
                else f"function {function!r} has no versions yet"
            )
        return t.version_record(row)

    async def _upsert_alias(
        self, conn: AsyncConnection, function: str, alias: str, values: dict[str, Any]
    ) -> None:
        updated = await conn.execute(
            t.aliases.update()
            .where(t.aliases.c.function == function, t.aliases.c.name == alias)
            .values(**values)
        )
        if updated.rowcount == 0:
            await conn.execute(t.aliases.insert().values(function=function, name=alias, **values))

    async def _follow(self, conn: AsyncConnection, function: str, version: str) -> None:
        """Point ``live`` at ``version`` unless it is pinned; create it if missing."""
        a = t.aliases.c
        updated = await conn.execute(
            t.aliases.update()
            .where(a.function == function, a.name == LIVE, a.pinned_at.is_(None))
            .values(version=version, additional_version=None, weight=None, rollback=sa.null())
        )
        if updated.rowcount == 0:
            exists = await conn.scalar(
                sa.select(a.name).where(a.function == function, a.name == LIVE)
            )
            if exists is None:
                await conn.execute(
                    t.aliases.insert().values(function=function, name=LIVE, version=version)
                )

    async def _alias(self, conn: AsyncConnection, function: str, alias: str) -> AliasRecord:
        row = (
            await conn.execute(
                sa.select(t.aliases).where(
                    t.aliases.c.function == function, t.aliases.c.name == alias
                )
            )
        ).first()
        if row is None:
            raise NotFoundError(f"function {function!r} has no alias {alias!r}")
        return t.alias_record(row)


def _check_alias(alias: str) -> None:
    if not _ALIAS_RE.match(alias) or alias.isdigit() or _VERSION_RE.match(alias):
        raise ValidationError(
            f"alias {alias!r} is not valid: use 1 to 64 letters, digits, '-' or '_', "
            "not only digits and not a 12-character version id",
            field="alias",
        )


def _copyable(records: Sequence[InvocationRecord]) -> bool:
    """Whether ``COPY`` takes every record: PostgreSQL text cannot hold a NUL, which a
    function's logs or error may carry (such a batch takes the other routes below)."""
    for record in records:
        if "\x00" in record.logs or "\x00" in (record.error_message or ""):
            return False
        if any("\x00" in line for line in record.stack_trace):
            return False
        if "\x00" in (record.error_type or "") or any("\x00" in i for i in record.event_ids):
            return False
    return True


async def _copy_records(conn: AsyncConnection, records: Sequence[InvocationRecord]) -> None:
    """Invocation records by ``COPY``: PostgreSQL spends about a quarter of what an
    ``INSERT`` of the batch as one JSON document costs it, and the driver encodes the
    rows in C. Runs on the transaction's own connection, so it commits with it."""
    import asyncpg  # type: ignore[import-untyped]

    stamps = new_id.many(len(records))
    values = [
        t.invocation_values(record, record.recorded_id or stamp, flag=bool)
        for record, stamp in zip(records, stamps, strict=True)
    ]
    raw: Any = (await conn.get_raw_connection()).driver_connection
    try:
        await raw.copy_records_to_table(
            t.invocations.name, records=values, columns=t.INVOCATION_VALUES_ORDER
        )
    except asyncpg.UniqueViolationError as exc:
        raise ConflictError(f"already exists: {exc}") from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        # Called on the driver's connection: its errors (a connection closed under it
        # among them) are not SQLAlchemy's, so they are converted here.
        raise AdapterError(f"store error: {exc}") from exc

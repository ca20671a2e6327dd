"""The cluster store: PostgreSQL through a psycopg 3 async connection pool.

Connections run in autocommit; every multi-statement write is one explicit
transaction. ``append_turn`` serialises appends to a session with ``SELECT ...
FOR UPDATE`` on the session row, so ``seq`` stays gap-free across connections
and processes. ``schema`` isolates a store (tests use one per test): it is
created if missing and set as ``search_path`` on every pooled connection.

Failure semantics (see :mod:`store.base`):

- ``open()`` first makes one direct connection with ``connect_timeout``, so an
  unreachable server, a wrong password or an unknown database fail at once with
  libpq's reason as :class:`StoreUnavailable` (libpq gives no SQLSTATE at
  connect time to tell them apart), never a hang.
- The server going away mid-call raises :class:`StoreUnavailable`; the open
  transaction is rolled back by the server, the broken connection is dropped by
  the pool, and ``check`` tests a pooled connection before handing it out, so
  the next call works as soon as the server is back. Waiting longer than
  ``acquire_timeout`` for a connection raises :class:`StoreUnavailable` too.
- A server that stops answering mid-statement (a network partition) blocks
  the call until TCP gives up; callers bound their calls with a timeout.

Messages name host, port and database, never the password.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from store import _schema as s
from store import base as b
from store.errors import InvalidRequest, NotFound, StoreConfigError, StoreError, StoreUnavailable
from store.models import (
    ApiKey,
    Event,
    Feedback,
    PipelineVersion,
    RunRecord,
    Session,
    TrainingRecord,
    Turn,
)

__all__ = ["PostgresStore"]

Conn = psycopg.AsyncConnection[DictRow]
Row = dict[str, Any]
Args = Sequence[Any] | dict[str, Any]

_INSERT = {t: s.insert(t, mark="%({})s") for t in s.TABLES}
_INSERT_NEW = {t: f"{q} ON CONFLICT DO NOTHING" for t, q in _INSERT.items()}
# Serialises concurrent migrate() calls on one schema, across processes.
_MIGRATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('elexirion.migrate.' || current_schema()))"


class PostgresStore:
    """:class:`store.base.Store` on PostgreSQL; the methods are documented there.

    Raises :class:`StoreConfigError` at construction for a DSN psycopg cannot parse.
    ``clock`` stamps records; tests inject one for distinct, ordered timestamps.
    """

    backend = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        schema: str | None = None,
        connect_timeout: int = 5,
        acquire_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            # psycopg quotes the DSN in its message: redact both.
            reason = b.redact_url(str(exc))
            raise StoreConfigError(f"bad PostgreSQL DSN {b.redact_url(dsn)!r}: {reason}") from None
        self._password = str(params.get("password") or "")
        self.target = "{}:{}/{}".format(
            params.get("host", "localhost"), params.get("port", 5432), params.get("dbname", "")
        )
        self.dsn, self.schema = dsn, schema
        self.min_size, self.max_size = min_size, max_size
        self.connect_timeout, self.acquire_timeout = connect_timeout, acquire_timeout
        self._clock = clock
        # application_name shows in pg_stat_activity which store a backend serves.
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": connect_timeout,
            "application_name": f"elexirion/{schema}" if schema else "elexirion",
        }
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        async with self._open_lock:
            self._check_open()
            if self._pool is not None:
                return
            try:  # one direct connection first: libpq's own reason, at once
                probe = await psycopg.AsyncConnection.connect(self.dsn, **self._kwargs)
            except psycopg.Error as exc:
                raise self._map(exc) from None
            async with probe:
                await self._create_schema(probe)
            pool = AsyncConnectionPool(
                self.dsn, connection_class=psycopg.AsyncConnection[DictRow], kwargs=self._kwargs,
                min_size=self.min_size, max_size=self.max_size, open=False,
                configure=self._configure, check=AsyncConnectionPool.check_connection,
                timeout=self.acquire_timeout, name=f"elexirion-store-{self.schema or 'public'}",
            )  # fmt: skip
            try:
                await pool.open(wait=True, timeout=self.connect_timeout)
            except BaseException as exc:
                await pool.close()  # stop its background reconnection attempts
                if isinstance(exc, PoolTimeout):
                    reason = f"no connection within {self.connect_timeout} s"
                    raise self._unavailable(reason) from None
                raise
            self._pool = pool

    async def _create_schema(self, conn: Conn) -> None:
        if self.schema is None:
            return
        try:
            query = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            await conn.execute(query)
        except psycopg.errors.UniqueViolation:
            pass  # created concurrently by another store: what we wanted
        except psycopg.Error as exc:
            raise self._map(exc) from None

    async def _configure(self, conn: Conn) -> None:
        if self.schema is not None:
            query = sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema))
            await conn.execute(query)

    async def close(self) -> None:
        self._closed = True  # from now on new calls are refused
        async with self._open_lock:  # an open() in progress finishes first
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()  # waits for connections in use to come back

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> bool:
        try:
            async with self._connection(wait_s=min(2.0, self.acquire_timeout)) as conn:
                await conn.execute("SELECT 1")
        except StoreError:
            return False
        return True

    async def migrate(self) -> int:
        migrations = s.checked(s.MIGRATIONS)  # read now, so tests can append one
        async with self._connection() as conn:
            current = 0
            for migration in [None, *migrations]:  # None: just create the table and read
                async with conn.transaction():
                    await conn.execute(_MIGRATE_LOCK)
                    await conn.execute(s.MIGRATIONS_TABLE_POSTGRES)
                    cur = await conn.execute(
                        "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations"
                    )
                    current = int(_must(await cur.fetchone())["v"])
                    s.check_not_newer(current, migrations, where=self.target)
                    if migration is None or migration.version <= current:
                        continue  # applied already, maybe by a concurrent migrate()
                    await self._apply(conn, migration)
                    current = migration.version
        return current

    async def _apply(self, conn: Conn, migration: s.Migration) -> None:
        try:
            for statement in migration.postgres:
                await conn.execute(statement)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the connection failed, not the migration: StoreUnavailable
        except psycopg.Error as exc:
            raise s.failed(migration, exc) from None
        await conn.execute(
            "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
            (migration.version, migration.description, self._clock()),
        )

    # ------------------------------------------------------------ plumbing

    def _check_open(self) -> None:
        if self._closed:
            raise self._unavailable("the store is closed", code="store_closed", retryable=False)

    def _unavailable(self, reason: str, **kwargs: Any) -> StoreUnavailable:
        return StoreUnavailable(
            f"PostgreSQL at {self.target}: {reason}",
            backend=self.backend,
            target=self.target,
            **kwargs,
        )

    def _map(self, exc: psycopg.Error) -> StoreError:
        reason = " ".join(str(exc).split())  # libpq's multi-line text on one line
        if self._password:
            reason = reason.replace(self._password, "***")
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return self._unavailable(reason)
        message = f"PostgreSQL at {self.target}: {reason}"
        if isinstance(exc, psycopg.DataError):
            return InvalidRequest(message)
        return StoreError(message)

    @asynccontextmanager
    async def _connection(self, wait_s: float | None = None) -> AsyncIterator[Conn]:
        """A pooled connection; driver and pool errors leave as store errors."""
        if self._pool is None:
            await self.open()
        self._check_open()
        if self._pool is None:  # never None here: open() set it or raised
            raise StoreError("the PostgreSQL pool is not open")
        try:
            async with self._pool.connection(timeout=wait_s) as conn:
                yield conn
        except PoolTimeout:
            waited = self.acquire_timeout if wait_s is None else wait_s
            raise self._unavailable(f"no free connection within {waited} s") from None
        except PoolClosed:
            raise self._unavailable(
                "the store is closed", code="store_closed", retryable=False
            ) from None
        except psycopg.Error as exc:
            raise self._map(exc) from None

    async def _rows(self, query: str, args: Args = ()) -> list[Row]:
        async with self._connection() as conn:
            cur = await conn.execute(query, args)
            return await cur.fetchall()

    async def _row(self, query: str, args: Args = ()) -> Row | None:
        async with self._connection() as conn:
            cur = await conn.execute(query, args)
            return await cur.fetchone()

    async def _exec(self, query: str, args: Args = ()) -> int:
        async with self._connection() as conn:
            return (await conn.execute(query, args)).rowcount

    # ------------------------------------------------------------ sessions & turns

    async def create_session(
        self, session_id: str, *, user_id: str | None = None, meta: dict[str, Any] | None = None
    ) -> Session:
        params = s.new_session(session_id, user_id, meta or {}, self._clock())
        for _ in range(3):  # a concurrent delete between the two statements: try again
            row = await self._row(f"{_INSERT_NEW[Session]} RETURNING *", params)
            row = row or await self._row("SELECT * FROM sessions WHERE id = %s", (session_id,))
            if row is not None:
                return s.from_row(Session, row)
        raise StoreError(f"session {session_id!r} was deleted as fast as it was created")

    async def get_session(self, session_id: str) -> Session | None:
        row = await self._row("SELECT * FROM sessions WHERE id = %s", (session_id,))
        return None if row is None else s.from_row(Session, row)

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Session]:
        b.check_page(limit=limit, offset=offset)
        rows = await self._rows(
            "SELECT * FROM sessions WHERE (%(user)s::text IS NULL OR user_id = %(user)s)"
            " ORDER BY updated_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
            {"user": user_id, "limit": limit, "offset": offset},
        )
        return [s.from_row(Session, r) for r in rows]

    async def delete_session(self, session_id: str) -> bool:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM feedback WHERE session_id = %s", (session_id,))
            # Turns go with the session: ON DELETE CASCADE.
            cur = await conn.execute("DELETE FROM sessions WHERE id = %s", (session_id,))
            return cur.rowcount > 0

    async def update_session(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        active_agent: str | b.Keep | None = b.KEEP,
        meta: dict[str, Any] | None = None,
    ) -> Session:
        args = s.session_update(session_id, context=context, active_agent=active_agent, meta=meta)
        row = await self._row(
            "UPDATE sessions SET context = COALESCE(%(context)s::jsonb, context),"
            " meta = COALESCE(%(meta)s::jsonb, meta),"
            " active_agent = CASE WHEN %(keep)s THEN active_agent ELSE %(agent)s END,"
            " updated_at = %(now)s WHERE id = %(id)s RETURNING *",
            {**args, "now": self._clock()},
        )
        if row is None:
            raise NotFound(f"no session {session_id!r}", kind="session", key=session_id)
        return s.from_row(Session, row)

    async def append_turn(
        self,
        session_id: str,
        *,
        turn_id: str,
        role: str,
        content: str,
        meta: dict[str, Any] | None = None,
    ) -> Turn:
        turn = Turn(
            session_id=session_id, seq=0, turn_id=turn_id, role=role, content=content,
            meta=meta or {}, created_at=0.0,
        )  # fmt: skip
        s.to_row(turn)  # check before touching the database
        find = "SELECT * FROM turns WHERE session_id = %s AND turn_id = %s"
        async with self._connection() as conn:
            existing = await (await conn.execute(find, (session_id, turn_id))).fetchone()
            if existing is not None:  # a repeat: the stored turn, nothing written
                return s.from_row(Turn, existing)
            async with conn.transaction():
                new = s.new_session(session_id, None, {}, self._clock())
                await conn.execute(_INSERT_NEW[Session], new)
                # The row lock orders concurrent appends: each sees the last count.
                cur = await conn.execute(
                    "SELECT turn_count FROM sessions WHERE id = %s FOR UPDATE", (session_id,)
                )
                seq = int(_must(await cur.fetchone())["turn_count"]) + 1
                existing = await (await conn.execute(find, (session_id, turn_id))).fetchone()
                if existing is not None:  # the same turn won the lock before us
                    return s.from_row(Turn, existing)
                stored = replace(turn, seq=seq, created_at=self._clock())
                await conn.execute(_INSERT[Turn], s.to_row(stored))
                await conn.execute(
                    "UPDATE sessions SET turn_count = %s, updated_at = %s WHERE id = %s",
                    (seq, stored.created_at, session_id),
                )
        return stored

    async def turns(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        after_seq: int = 0,
        last: int | None = None,
    ) -> list[Turn]:
        count = b.turn_window(limit=limit, last=last)  # None: LIMIT NULL, no limit
        if last is not None:
            query = (
                "SELECT * FROM (SELECT * FROM turns WHERE session_id = %s AND seq > %s"
                " ORDER BY seq DESC LIMIT %s) AS t ORDER BY seq"
            )
        else:
            query = "SELECT * FROM turns WHERE session_id = %s AND seq > %s ORDER BY seq LIMIT %s"
        rows = await self._rows(query, (session_id, after_seq, count))
        return [s.from_row(Turn, r) for r in rows]

    # ------------------------------------------------------------ runs & checkpoints

    async def create_run(self, run: RunRecord) -> None:
        await self._exec(_INSERT_NEW[RunRecord], s.to_row(run))

    async def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        executor: str | None = None,
        node: str | None = None,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> RunRecord:
        args = s.run_update(
            run_id, status=status, executor=executor, node=node, result=result, error=error
        )
        row = await self._row(
            "UPDATE runs SET status = COALESCE(%(status)s, status),"
            " executor = COALESCE(%(executor)s, executor), node = COALESCE(%(node)s, node),"
            " result = COALESCE(%(result)s::jsonb, result),"
            " error = COALESCE(%(error)s::jsonb, error),"
            " updated_at = %(now)s WHERE run_id = %(id)s RETURNING *",
            {**args, "now": self._clock()},
        )
        if row is None:
            raise NotFound(f"no run {run_id!r}", kind="run", key=run_id)
        return s.from_row(RunRecord, row)

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._row("SELECT * FROM runs WHERE run_id = %s", (run_id,))
        return None if row is None else s.from_row(RunRecord, row)

    async def list_runs(
        self, *, status: str | None = None, executor: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM runs WHERE (%(status)s::text IS NULL OR status = %(status)s)"
            " AND (%(executor)s::text IS NULL OR executor = %(executor)s)"
            " ORDER BY created_at DESC, run_id DESC LIMIT %(limit)s",
            {"status": status, "executor": executor, "limit": limit},
        )
        return [s.from_row(RunRecord, r) for r in rows]

    async def save_checkpoint(self, run_key: str, data: dict[str, Any]) -> None:
        text = b.encode_json(data, what="checkpoint data")
        await self._exec(
            "INSERT INTO checkpoints VALUES (%s, %s, %s) ON CONFLICT (run_key)"
            " DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            (b.check_text(run_key, what="run key"), text, self._clock()),
        )

    async def load_checkpoint(self, run_key: str) -> dict[str, Any] | None:
        row = await self._row("SELECT data FROM checkpoints WHERE run_key = %s", (run_key,))
        return None if row is None else s.decode(row["data"])

    async def clear_checkpoint(self, run_key: str) -> None:
        await self._exec("DELETE FROM checkpoints WHERE run_key = %s", (run_key,))

    # ------------------------------------------------------------ learning data

    async def add_training_record(self, record: TrainingRecord) -> str:
        await self._exec(_INSERT_NEW[TrainingRecord], s.to_row(record))
        return record.id

    async def training_records(
        self, *, pipeline: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[TrainingRecord]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM training_records"
            " WHERE (%(pipeline)s::text IS NULL OR pipeline = %(pipeline)s)"
            " AND (%(since)s::float8 IS NULL OR created_at >= %(since)s)"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"pipeline": pipeline, "since": since, "limit": limit},
        )
        return [s.from_row(TrainingRecord, r) for r in rows]

    async def add_events(self, events: Sequence[Event]) -> None:
        rows = [s.to_row(e) for e in events]  # check all first: all or nothing
        if rows:
            async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.executemany(_INSERT_NEW[Event], rows)

    async def events(
        self, *, kind: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Event]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM events WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)"
            " AND (%(since)s::float8 IS NULL OR created_at >= %(since)s)"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"kind": kind, "since": since, "limit": limit},
        )
        return [s.from_row(Event, r) for r in rows]

    async def save_pipeline_version(self, version: PipelineVersion) -> None:
        values = s.to_row(version)
        async with self._connection() as conn:
            try:
                await conn.execute(_INSERT[PipelineVersion], values)
            except psycopg.errors.UniqueViolation:
                raise s.version_exists(version) from None

    async def pipeline_versions(self, name: str) -> list[PipelineVersion]:
        q = "SELECT * FROM pipeline_versions WHERE name = %s ORDER BY version"
        return [s.from_row(PipelineVersion, r) for r in await self._rows(q, (name,))]

    async def latest_pipeline_version(self, name: str) -> PipelineVersion | None:
        q = "SELECT * FROM pipeline_versions WHERE name = %s ORDER BY version DESC LIMIT 1"
        row = await self._row(q, (name,))
        return None if row is None else s.from_row(PipelineVersion, row)

    # ------------------------------------------------------------ auth

    async def create_api_key(self, key: ApiKey) -> None:
        values = s.to_row(key)
        async with self._connection() as conn:
            try:
                await conn.execute(_INSERT[ApiKey], values)
            except psycopg.errors.UniqueViolation as exc:
                raise s.api_key_exists(key, f"{exc.diag.constraint_name} taken") from None

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        now = self._clock()
        row = await self._row(
            "UPDATE api_keys SET last_used_at = %(now)s"
            " WHERE key_hash = %(hash)s AND revoked_at IS NULL"
            " AND (last_used_at IS NULL OR last_used_at <= %(stale)s) RETURNING *",
            {"now": now, "hash": key_hash, "stale": now - b.LAST_USED_RESOLUTION_S},
        )
        if row is None:  # unknown, revoked, or used recently: read without writing
            row = await self._row(
                "SELECT * FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL", (key_hash,)
            )
        return None if row is None else s.from_row(ApiKey, row)

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self._rows("SELECT * FROM api_keys ORDER BY created_at, id")
        return [s.from_row(ApiKey, r) for r in rows]

    async def revoke_api_key(self, name: str) -> bool:
        q = "UPDATE api_keys SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL"
        return await self._exec(q, (self._clock(), name)) > 0

    # ------------------------------------------------------------ feedback

    async def add_feedback(self, feedback: Feedback) -> str:
        await self._exec(_INSERT_NEW[Feedback], s.to_row(feedback))
        return feedback.id

    async def feedback(self, *, session_id: str | None = None, limit: int = 1000) -> list[Feedback]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM feedback WHERE (%(sid)s::text IS NULL OR session_id = %(sid)s)"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"sid": session_id, "limit": limit},
        )
        return [s.from_row(Feedback, r) for r in rows]


def _must(row: Row | None) -> Row:
    if row is None:  # the statement always returns one row; None means a bug
        raise StoreError("expected a row, got none")
    return row


if TYPE_CHECKING:
    _conforms: b.Store = PostgresStore("postgresql://localhost/x")

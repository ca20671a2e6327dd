"""The PostgreSQL store's plumbing: the connection pool, its lifecycle, error mapping.

:class:`PostgresPool` is the half of :class:`store.postgres.PostgresStore` that
parses the DSN, opens the pool (after one direct probe connection) and closes
it, creates the store's ``schema`` and sets it as ``search_path`` on every
pooled connection, hands out connections with driver and pool errors mapped to
store errors (passwords redacted), and applies the migrations.
:class:`~store.postgres.PostgresStore` adds the :class:`store.base.Store`
methods on top. Failure semantics: :mod:`store.postgres`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from store import _schema as s
from store import base as b
from store._schema import Args, Row
from store.errors import InvalidRequest, StoreConfigError, StoreError, StoreUnavailable

__all__ = ["Conn", "PostgresPool", "must"]

Conn = psycopg.AsyncConnection[DictRow]

# Serialises concurrent migrate() calls on one schema, across processes.
_MIGRATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('elexirion.migrate.' || current_schema()))"


def must(row: Row | None) -> Row:
    """``row``, from a statement that always returns one; ``None`` raises :class:`StoreError`."""
    if row is None:  # the statement always returns one row; None means a bug
        raise StoreError("expected a row, got none")
    return row


class PostgresPool:
    """The connection pool of a :class:`~store.postgres.PostgresStore`.

    Holds its constructor (raises :class:`StoreConfigError` for a DSN psycopg
    cannot parse), lifecycle (``open``, ``close``, ``migrate``, ``ping``) and
    :meth:`_connection`, which lends a pooled connection.
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
                    current = int(must(await cur.fetchone())["v"])
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

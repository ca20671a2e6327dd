"""The SQLite store's plumbing: the worker thread, its one connection, the lifecycle.

:class:`SqliteConnection` is the half of :class:`store.sqlite.SqliteStore` that
owns the single-thread executor and the ``sqlite3.Connection`` only it touches:
opening (pragmas, the WAL check) and closing, running a call on the worker,
mapping SQLite errors to store errors, and applying the migrations.
:class:`~store.sqlite.SqliteStore` adds the :class:`store.base.Store` methods on
top. :func:`transaction`, :func:`one` and :func:`must` are the helpers those
methods use on the worker. Threading and failure semantics: :mod:`store.sqlite`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from store import _schema as s
from store._schema import Args, Row
from store.errors import StoreConfigError, StoreError, StoreUnavailable

__all__ = ["Conn", "SqliteConnection", "must", "one", "transaction"]

T = TypeVar("T")
Conn = sqlite3.Connection

# Primary result codes (low byte of extended codes) meaning "not now": BUSY,
# LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
_UNAVAILABLE = frozenset({5, 6, 10, 13, 14, 15})
_CANTOPEN, _NOTADB = 14, 26
#: At most this many waiting calls share one group commit.
MAX_GROUP = 64


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, values, strict=True)}


@contextmanager
def transaction(conn: Conn) -> Iterator[None]:
    """Run the block in one write transaction: committed on exit, rolled back on a raise.

    Inside a group commit (the connection already in a transaction) the block runs in
    the group's savepoint for its call, which gives the same all-or-nothing.
    """
    if _in_transaction(conn):
        yield
        return
    # IMMEDIATE takes the write lock up front, so a read-then-write never fails
    # half-way with SQLITE_BUSY on lock upgrade.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself on some errors
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _in_transaction(conn: Conn) -> bool:
    return conn.in_transaction


def _outcome(
    run: Callable[[Callable[[Conn], Any]], Any], op: Callable[[Conn], Any]
) -> tuple[bool, Any]:
    try:
        return True, run(op)
    except Exception as exc:  # noqa: BLE001 - handed to the caller's future
        return False, exc


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.cancelled():  # the caller went away; the call ran (and committed) anyway
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def one(conn: Conn, sql: str, *args: Any) -> Row | None:
    """The first row ``sql`` returns, or ``None``."""
    row: Row | None = conn.execute(sql, args).fetchone()
    return row


def must(row: Row | None) -> Row:
    """``row``, which the caller has just written; ``None`` raises :class:`StoreError`."""
    if row is None:  # read back right after writing it, on the same serial worker
        raise StoreError("a row written in this transaction could not be read back")
    return row


class SqliteConnection:
    """The worker thread and the connection of a :class:`~store.sqlite.SqliteStore`.

    Holds its constructor, lifecycle (``open``, ``close``, ``migrate``, ``ping``,
    ``pragmas``) and :meth:`_call`, which runs an operation on the worker.
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._clock = clock
        self._memory = self.path == ":memory:"
        self._executor: ThreadPoolExecutor | None = None
        self._conn: Conn | None = None  # touched on the worker thread only
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._pending: list[tuple[Callable[[Conn], Any], asyncio.Future[Any], Any]] = []
        self._pending_lock = threading.Lock()
        self._draining = False

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        async with self._open_lock:
            self._check_open()
            if self._executor is None:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="elexirion-sqlite")
                try:
                    await asyncio.get_running_loop().run_in_executor(executor, self._connect)
                except BaseException:
                    executor.shutdown(wait=False)
                    raise
                self._executor = executor

    def _connect(self) -> None:
        try:
            if not self._memory:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)  # we BEGIN ourselves
        except (OSError, sqlite3.Error) as exc:
            raise StoreConfigError(f"cannot open SQLite database {self.path}: {exc}") from None
        try:
            conn.row_factory = _dict_row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()["journal_mode"])
            if not self._memory and mode.lower() != "wal":
                raise StoreConfigError(
                    f"SQLite database {self.path} cannot use WAL (journal_mode={mode}); "
                    "put it on a local filesystem"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._map(exc, opening=True) from None
            raise
        self._conn = conn

    async def close(self) -> None:
        self._closed = True  # from now on new calls are refused
        async with self._open_lock:  # an open() in progress finishes first
            executor, self._executor = self._executor, None
            if executor is not None:
                # Queued after every call already submitted, which still find the
                # connection open and finish.
                await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
                executor.shutdown(wait=True)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
            return await self._call(lambda c: one(c, "SELECT 1 AS ok") == {"ok": 1})
        except StoreError:
            return False

    async def pragmas(self) -> dict[str, Any]:
        """The connection's effective settings (journal_mode, synchronous...), for status."""
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        # A pragma answers one row, one column (not always named after the pragma).
        return await self._call(
            lambda c: {n: next(iter(must(one(c, f"PRAGMA {n}")).values())) for n in names}
        )

    async def migrate(self) -> int:
        migrations = s.checked(s.MIGRATIONS)  # read now, so tests can append one
        return await self._call(lambda c: self._migrate(c, migrations))

    def _migrate(self, conn: Conn, migrations: Sequence[s.Migration]) -> int:
        conn.execute(s.MIGRATIONS_TABLE_SQLITE)
        current = int(
            must(one(conn, "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations"))["v"]
        )
        s.check_not_newer(current, migrations, where=self.path)
        for migration in migrations[current:]:
            try:
                with transaction(conn):
                    for statement in migration.sqlite:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (migration.version, migration.description, self._clock()),
                    )
            except sqlite3.Error as exc:
                mapped = self._map(exc)
                raise (
                    mapped if isinstance(mapped, StoreUnavailable) else s.failed(migration, exc)
                ) from None
            current = migration.version
        return current

    # ------------------------------------------------------------ plumbing

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable(
                "the store is closed", backend=self.backend, target=self.path,
                code="store_closed", retryable=False,
            )  # fmt: skip

    async def _call(self, op: Callable[[Conn], T]) -> T:
        """Run ``op`` with the connection on the worker; SQLite errors are mapped there.

        Calls that arrive while the worker is busy are run together as one group
        commit (:meth:`_drain`): one transaction and one fsync for all of them, each
        call in its own savepoint, every result released only after the commit.
        """
        if self._executor is None:
            await self.open()
        self._check_open()
        if self._executor is None:  # never None here; run_in_executor would take the default
            raise StoreError("the SQLite worker is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._pending_lock:
            self._pending.append((op, future, loop))
            start = not self._draining
            self._draining = True
        if start:
            self._executor.submit(self._drain)
        return await future

    def _drain(self) -> None:
        """On the worker: run the waiting calls, a group at a time, until none wait."""
        while True:
            with self._pending_lock:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                if not group:
                    self._draining = False
                    return
            try:
                outcomes = self._run_group([op for op, _, _ in group])
            except Exception as exc:  # noqa: BLE001 - no caller may wait forever
                failed = (
                    exc
                    if isinstance(exc, StoreError)
                    else StoreError(f"SQLite database {self.path}: group commit failed: {exc}")
                )
                outcomes = [(False, failed) for _ in group]
            for (_, future, loop), outcome in zip(group, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)

    def _run_group(self, ops: list[Callable[[Conn], Any]]) -> list[tuple[bool, Any]]:
        """``(ok, result or exception)`` of each op; one op runs as it always did."""
        if len(ops) == 1 or self._conn is None:
            return [_outcome(self._guard, op) for op in ops]
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = self._map(exc)
            return [(False, error) for _ in ops]
        try:
            return self._grouped(conn, ops)
        except sqlite3.Error as exc:  # the savepoint machinery itself failed: none commits
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = self._map(exc)
            return [(False, error) for _ in ops]

    def _grouped(self, conn: Conn, ops: list[Callable[[Conn], Any]]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        for op in ops:
            conn.execute("SAVEPOINT call")
            ok, value = _outcome(self._guard, op)
            if not conn.in_transaction:  # SQLite rolled the whole group back (I/O, full)
                lost = StoreUnavailable(
                    f"SQLite database {self.path}: the group commit was rolled back",
                    backend=self.backend, target=self.path,
                )  # fmt: skip
                outcomes = [(False, lost) for _ in outcomes]
                outcomes.append((ok, value) if not ok else (False, lost))
                rest = ops[len(outcomes) :]
                return outcomes + [_outcome(self._guard, o) for o in rest]
            conn.execute("RELEASE call" if ok else "ROLLBACK TO call")
            if not ok:
                conn.execute("RELEASE call")
            outcomes.append((ok, value))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            error = self._map(exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, error) for _ in ops]
        return outcomes

    def _guard(self, op: Callable[[Conn], T]) -> T:
        if self._conn is None:  # close() ran while this call was queued behind it
            self._check_open()
            raise StoreError("the SQLite connection is not open")
        try:
            return op(self._conn)
        except sqlite3.Error as exc:
            raise self._map(exc) from None

    def _map(self, exc: sqlite3.Error, *, opening: bool = False) -> StoreError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        message = f"SQLite database {self.path}: {exc}"
        if code == _NOTADB or (opening and code == _CANTOPEN):
            return StoreConfigError(message)
        if code in _UNAVAILABLE:
            return StoreUnavailable(message, backend=self.backend, target=self.path)
        return StoreError(message)

    async def _rows(self, sql: str, args: Args = ()) -> list[Row]:
        return await self._call(lambda c: c.execute(sql, args).fetchall())

    async def _row(self, sql: str, *args: Any) -> Row | None:
        return await self._call(lambda c: one(c, sql, *args))

    async def _exec(self, sql: str, args: Args = ()) -> int:
        return await self._call(lambda c: c.execute(sql, args).rowcount)

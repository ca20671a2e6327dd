"""The embedded store: one SQLite file, one connection, one worker thread.

Every call runs on a dedicated single-thread executor that owns the only
``sqlite3.Connection`` (``check_same_thread`` stays on, and rows leave the worker
as plain dicts, so no SQLite object crosses threads). The worker runs one call at
a time, which serialises writes: that is how ``append_turn`` hands out gap-free
``seq`` numbers without further locking.

The file is opened by this process's store only: in the platform the ``store``
actor owns it and everyone else goes through the actor. An outside reader (a
``sqlite3`` shell, a test) is harmless thanks to WAL; an outside writer may make
calls wait up to ``busy_timeout_ms``.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL`` fsyncs the WAL on every
commit, and every write commits before its call returns.

Failure semantics (see :mod:`store.base`): the file locked beyond the busy
timeout, an I/O error or a full disk raise :class:`StoreUnavailable` (retryable)
after rolling the transaction back; nothing is retried here. An unopenable path
or a file that is not a database raises :class:`StoreConfigError`. A call whose
awaiting task is cancelled still runs to its end on the worker.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from store import _schema as s
from store import base as b
from store.errors import NotFound, StoreConfigError, StoreError, StoreUnavailable
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

__all__ = ["SqliteStore"]

T = TypeVar("T")
Conn = sqlite3.Connection
Row = dict[str, Any]
Args = Sequence[Any] | dict[str, Any]

# Primary result codes (low byte of extended codes) meaning "not now": BUSY,
# LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
_UNAVAILABLE = frozenset({5, 6, 10, 13, 14, 15})
_CANTOPEN, _NOTADB = 14, 26
_INSERT = {record_type: s.insert(record_type) for record_type in s.TABLES}
_INSERT_NEW = {t: f"{sql} ON CONFLICT DO NOTHING" for t, sql in _INSERT.items()}


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, values, strict=True)}


@contextmanager
def _transaction(conn: Conn) -> Iterator[None]:
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


def _one(conn: Conn, sql: str, *args: Any) -> Row | None:
    row: Row | None = conn.execute(sql, args).fetchone()
    return row


def _must(row: Row | None) -> Row:
    if row is None:  # read back right after writing it, on the same serial worker
        raise StoreError("a row written in this transaction could not be read back")
    return row


class SqliteStore:
    """:class:`store.base.Store` on a SQLite file; the methods are documented there.

    ``path`` may be ``":memory:"`` (tests only: nothing is durable). ``clock``
    stamps records; tests inject one for distinct, ordered timestamps.
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
            return await self._call(lambda c: _one(c, "SELECT 1 AS ok") == {"ok": 1})
        except StoreError:
            return False

    async def pragmas(self) -> dict[str, Any]:
        """The connection's effective settings (journal_mode, synchronous...), for status."""
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        # A pragma answers one row, one column (not always named after the pragma).
        return await self._call(
            lambda c: {n: next(iter(_must(_one(c, f"PRAGMA {n}")).values())) for n in names}
        )

    async def migrate(self) -> int:
        migrations = s.checked(s.MIGRATIONS)  # read now, so tests can append one
        return await self._call(lambda c: self._migrate(c, migrations))

    def _migrate(self, conn: Conn, migrations: Sequence[s.Migration]) -> int:
        conn.execute(s.MIGRATIONS_TABLE_SQLITE)
        current = int(
            _must(_one(conn, "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations"))["v"]
        )
        s.check_not_newer(current, migrations, where=self.path)
        for migration in migrations[current:]:
            try:
                with _transaction(conn):
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
        """Run ``op`` with the connection on the worker; SQLite errors are mapped there."""
        if self._executor is None:
            await self.open()
        self._check_open()
        if self._executor is None:  # never None here; run_in_executor would take the default
            raise StoreError("the SQLite worker is not running")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._guard, op)

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
        return await self._call(lambda c: _one(c, sql, *args))

    async def _exec(self, sql: str, args: Args = ()) -> int:
        return await self._call(lambda c: c.execute(sql, args).rowcount)

    # ------------------------------------------------------------ sessions & turns

    async def create_session(
        self, session_id: str, *, user_id: str | None = None, meta: dict[str, Any] | None = None
    ) -> Session:
        s.new_session(session_id, user_id, meta or {}, 0.0)  # check before queueing

        def op(conn: Conn) -> Row:
            conn.execute(
                _INSERT_NEW[Session], s.new_session(session_id, user_id, meta or {}, self._clock())
            )
            return _must(_one(conn, "SELECT * FROM sessions WHERE id = ?", session_id))

        return s.from_row(Session, await self._call(op))

    async def get_session(self, session_id: str) -> Session | None:
        row = await self._row("SELECT * FROM sessions WHERE id = ?", session_id)
        return None if row is None else s.from_row(Session, row)

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Session]:
        b.check_page(limit=limit, offset=offset)
        rows = await self._rows(
            "SELECT * FROM sessions WHERE (:user IS NULL OR user_id = :user)"
            " ORDER BY updated_at DESC, id DESC LIMIT :limit OFFSET :offset",
            {"user": user_id, "limit": limit, "offset": offset},
        )
        return [s.from_row(Session, r) for r in rows]

    async def delete_session(self, session_id: str) -> bool:
        def op(conn: Conn) -> bool:
            with _transaction(conn):
                conn.execute("DELETE FROM feedback WHERE session_id = ?", (session_id,))
                # Turns go with the session: ON DELETE CASCADE (foreign_keys = ON).
                return conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

        return await self._call(op)

    async def update_session(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        active_agent: str | b.Keep | None = b.KEEP,
        meta: dict[str, Any] | None = None,
    ) -> Session:
        args = s.session_update(session_id, context=context, active_agent=active_agent, meta=meta)

        def op(conn: Conn) -> Row:
            with _transaction(conn):
                cursor = conn.execute(
                    "UPDATE sessions SET context = COALESCE(:context, context),"
                    " meta = COALESCE(:meta, meta),"
                    " active_agent = CASE WHEN :keep THEN active_agent ELSE :agent END,"
                    " updated_at = :now WHERE id = :id",
                    {**args, "now": self._clock()},
                )
                if cursor.rowcount == 0:
                    raise NotFound(f"no session {session_id!r}", kind="session", key=session_id)
                return _must(_one(conn, "SELECT * FROM sessions WHERE id = ?", session_id))

        return s.from_row(Session, await self._call(op))

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
        s.to_row(turn)  # check before queueing

        def op(conn: Conn) -> Row:
            with _transaction(conn):
                sql = "SELECT * FROM turns WHERE session_id = ? AND turn_id = ?"
                existing = _one(conn, sql, session_id, turn_id)
                if existing is not None:  # a repeat: the stored turn, nothing written
                    return existing
                now = self._clock()
                conn.execute(_INSERT_NEW[Session], s.new_session(session_id, None, {}, now))
                count = _must(
                    _one(conn, "SELECT turn_count FROM sessions WHERE id = ?", session_id)
                )
                seq = int(count["turn_count"]) + 1
                conn.execute(_INSERT[Turn], s.to_row(replace(turn, seq=seq, created_at=now)))
                conn.execute(
                    "UPDATE sessions SET turn_count = ?, updated_at = ? WHERE id = ?",
                    (seq, now, session_id),
                )
                return _must(_one(conn, sql, session_id, turn_id))

        return s.from_row(Turn, await self._call(op))

    async def turns(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        after_seq: int = 0,
        last: int | None = None,
    ) -> list[Turn]:
        count = b.turn_window(limit=limit, last=last)
        args = (session_id, after_seq, -1 if count is None else count)  # -1: no limit
        if last is not None:
            sql = (
                "SELECT * FROM (SELECT * FROM turns WHERE session_id = ? AND seq > ?"
                " ORDER BY seq DESC LIMIT ?) AS t ORDER BY seq"
            )
        else:
            sql = "SELECT * FROM turns WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        return [s.from_row(Turn, r) for r in await self._rows(sql, args)]

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

        def op(conn: Conn) -> Row:
            with _transaction(conn):
                cursor = conn.execute(
                    "UPDATE runs SET status = COALESCE(:status, status),"
                    " executor = COALESCE(:executor, executor), node = COALESCE(:node, node),"
                    " result = COALESCE(:result, result), error = COALESCE(:error, error),"
                    " updated_at = :now WHERE run_id = :id",
                    {**args, "now": self._clock()},
                )
                if cursor.rowcount == 0:
                    raise NotFound(f"no run {run_id!r}", kind="run", key=run_id)
                return _must(_one(conn, "SELECT * FROM runs WHERE run_id = ?", run_id))

        return s.from_row(RunRecord, await self._call(op))

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._row("SELECT * FROM runs WHERE run_id = ?", run_id)
        return None if row is None else s.from_row(RunRecord, row)

    async def list_runs(
        self, *, status: str | None = None, executor: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM runs WHERE (:status IS NULL OR status = :status)"
            " AND (:executor IS NULL OR executor = :executor)"
            " ORDER BY created_at DESC, run_id DESC LIMIT :limit",
            {"status": status, "executor": executor, "limit": limit},
        )
        return [s.from_row(RunRecord, r) for r in rows]

    async def save_checkpoint(self, run_key: str, data: dict[str, Any]) -> None:
        text = b.encode_json(data, what="checkpoint data")
        await self._call(
            lambda c: c.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (run_key)"
                " DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (b.check_text(run_key, what="run key"), text, self._clock()),
            )
        )

    async def load_checkpoint(self, run_key: str) -> dict[str, Any] | None:
        row = await self._row("SELECT data FROM checkpoints WHERE run_key = ?", run_key)
        return None if row is None else s.decode(row["data"])

    async def clear_checkpoint(self, run_key: str) -> None:
        await self._exec("DELETE FROM checkpoints WHERE run_key = ?", (run_key,))

    # ------------------------------------------------------------ learning data

    async def add_training_record(self, record: TrainingRecord) -> str:
        await self._exec(_INSERT_NEW[TrainingRecord], s.to_row(record))
        return record.id

    async def training_records(
        self, *, pipeline: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[TrainingRecord]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM training_records WHERE (:pipeline IS NULL OR pipeline = :pipeline)"
            " AND (:since IS NULL OR created_at >= :since) ORDER BY created_at, id LIMIT :limit",
            {"pipeline": pipeline, "since": since, "limit": limit},
        )
        return [s.from_row(TrainingRecord, r) for r in rows]

    async def add_events(self, events: Sequence[Event]) -> None:
        rows = [s.to_row(e) for e in events]  # check all first: all or nothing

        def op(conn: Conn) -> None:
            with _transaction(conn):
                conn.executemany(_INSERT_NEW[Event], rows)

        if rows:
            await self._call(op)

    async def events(
        self, *, kind: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Event]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM events WHERE (:kind IS NULL OR kind = :kind)"
            " AND (:since IS NULL OR created_at >= :since) ORDER BY created_at, id LIMIT :limit",
            {"kind": kind, "since": since, "limit": limit},
        )
        return [s.from_row(Event, r) for r in rows]

    async def save_pipeline_version(self, version: PipelineVersion) -> None:
        values = s.to_row(version)

        def op(conn: Conn) -> None:
            try:
                conn.execute(_INSERT[PipelineVersion], values)
            except sqlite3.IntegrityError:
                raise s.version_exists(version) from None

        await self._call(op)

    async def pipeline_versions(self, name: str) -> list[PipelineVersion]:
        sql = "SELECT * FROM pipeline_versions WHERE name = ? ORDER BY version"
        return [s.from_row(PipelineVersion, r) for r in await self._rows(sql, (name,))]

    async def latest_pipeline_version(self, name: str) -> PipelineVersion | None:
        sql = "SELECT * FROM pipeline_versions WHERE name = ? ORDER BY version DESC LIMIT 1"
        row = await self._row(sql, name)
        return None if row is None else s.from_row(PipelineVersion, row)

    # ------------------------------------------------------------ auth

    async def create_api_key(self, key: ApiKey) -> None:
        values = s.to_row(key)

        def op(conn: Conn) -> None:
            try:
                conn.execute(_INSERT[ApiKey], values)
            except sqlite3.IntegrityError as exc:
                raise s.api_key_exists(key, str(exc)) from None

        await self._call(op)

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        def op(conn: Conn) -> ApiKey | None:
            sql = "SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL"
            row = _one(conn, sql, key_hash)
            if row is None:
                return None
            key, now = s.from_row(ApiKey, row), self._clock()
            if key.last_used_at is None or now - key.last_used_at >= b.LAST_USED_RESOLUTION_S:
                conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key.id))
                key = replace(key, last_used_at=now)
            return key

        return await self._call(op)

    async def list_api_keys(self) -> list[ApiKey]:
        return [
            s.from_row(ApiKey, r)
            for r in await self._rows("SELECT * FROM api_keys ORDER BY created_at, id")
        ]

    async def revoke_api_key(self, name: str) -> bool:
        sql = "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL"
        return await self._call(lambda c: c.execute(sql, (self._clock(), name)).rowcount > 0)

    # ------------------------------------------------------------ feedback

    async def add_feedback(self, feedback: Feedback) -> str:
        await self._exec(_INSERT_NEW[Feedback], s.to_row(feedback))
        return feedback.id

    async def feedback(self, *, session_id: str | None = None, limit: int = 1000) -> list[Feedback]:
        b.check_page(limit=limit)
        rows = await self._rows(
            "SELECT * FROM feedback WHERE (:sid IS NULL OR session_id = :sid)"
            " ORDER BY created_at, id LIMIT :limit",
            {"sid": session_id, "limit": limit},
        )
        return [s.from_row(Feedback, r) for r in rows]


if TYPE_CHECKING:
    _conforms: b.Store = SqliteStore(":memory:")

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
commit, and every write commits before its call returns. Calls that queue up while
the worker is busy share one commit (group commit, see
:meth:`~store._sqlite_conn.SqliteConnection._call`): under load one fsync covers
many writes, each in its own savepoint, so one call's failure undoes only its own.

Failure semantics (see :mod:`store.base`): the file locked beyond the busy
timeout, an I/O error or a full disk raise :class:`StoreUnavailable` (retryable)
after rolling the transaction back; nothing is retried here. An unopenable path
or a file that is not a database raises :class:`StoreConfigError`. A call whose
awaiting task is cancelled still runs to its end on the worker.

The worker, the connection and the lifecycle are in :mod:`store._sqlite_conn`;
this module holds the :class:`store.base.Store` methods.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from store import _schema as s
from store import base as b
from store._schema import Row
from store._sqlite_conn import Conn, SqliteConnection, must, one, transaction
from store.models import (
    ApiKey,
    Event,
    Feedback,
    NewTurn,
    PipelineVersion,
    RunRecord,
    Session,
    TrainingRecord,
    Turn,
)

__all__ = ["SqliteStore"]

_INSERT = {record_type: s.insert(record_type) for record_type in s.TABLES}
_INSERT_NEW = {t: f"{sql} ON CONFLICT DO NOTHING" for t, sql in _INSERT.items()}


class SqliteStore(SqliteConnection, b.AppendTurn):
    """:class:`store.base.Store` on a SQLite file; the methods are documented there.

    ``path`` may be ``":memory:"`` (tests only: nothing is durable). ``clock``
    stamps records; tests inject one for distinct, ordered timestamps. The
    constructor, lifecycle and worker come from :class:`SqliteConnection`.
    """

    # ------------------------------------------------------------ sessions & turns

    async def create_session(
        self, session_id: str, *, user_id: str | None = None, meta: dict[str, Any] | None = None
    ) -> Session:
        s.new_session(session_id, user_id, meta or {}, 0.0)  # check before queueing

        def op(conn: Conn) -> Row:
            conn.execute(
                _INSERT_NEW[Session], s.new_session(session_id, user_id, meta or {}, self._clock())
            )
            return must(one(conn, "SELECT * FROM sessions WHERE id = ?", session_id))

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
            with transaction(conn):
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
            with transaction(conn):
                cursor = conn.execute(
                    "UPDATE sessions SET context = COALESCE(:context, context),"
                    " meta = COALESCE(:meta, meta),"
                    " active_agent = CASE WHEN :keep THEN active_agent ELSE :agent END,"
                    " updated_at = :now WHERE id = :id",
                    {**args, "now": self._clock()},
                )
                if cursor.rowcount == 0:
                    raise s.session_not_found(session_id)
                return must(one(conn, "SELECT * FROM sessions WHERE id = ?", session_id))

        return s.from_row(Session, await self._call(op))

    async def append_turns(
        self,
        session_id: str,
        turns: Sequence[NewTurn],
        *,
        context: dict[str, Any] | None = None,
        active_agent: str | b.Keep | None = b.KEEP,
    ) -> list[Turn]:
        # Checked storable before queueing: nothing half-written on a bad value.
        checked = [s.new_turn(session_id, t.turn_id, t.role, t.content, t.meta) for t in turns]
        update = s.session_update(session_id, context=context, active_agent=active_agent, meta=None)

        def op(conn: Conn) -> list[Row]:
            sql = "SELECT * FROM turns WHERE session_id = ? AND turn_id = ?"
            with transaction(conn):
                stored = [one(conn, sql, session_id, t.turn_id) for t in checked]
                if all(row is not None for row in stored):  # all repeats: nothing written
                    return [must(row) for row in stored]
                now = self._clock()
                conn.execute(_INSERT_NEW[Session], s.new_session(session_id, None, {}, now))
                count = must(one(conn, "SELECT turn_count FROM sessions WHERE id = ?", session_id))
                fresh = s.numbered(checked, stored, int(count["turn_count"]), now)
                for turn in fresh:
                    conn.execute(_INSERT[Turn], s.to_row(turn))
                conn.execute(
                    "UPDATE sessions SET turn_count = :seq, updated_at = :now,"
                    " context = COALESCE(:context, context),"
                    " active_agent = CASE WHEN :keep THEN active_agent ELSE :agent END"
                    " WHERE id = :id",
                    {**update, "seq": fresh[-1].seq, "now": now},
                )
                return [must(one(conn, sql, session_id, t.turn_id)) for t in checked]

        return [s.from_row(Turn, row) for row in await self._call(op)]

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

    async def create_run(self, run: RunRecord) -> bool:
        return await self._exec(_INSERT_NEW[RunRecord], s.to_row(run)) > 0

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
            with transaction(conn):
                cursor = conn.execute(
                    "UPDATE runs SET status = COALESCE(:status, status),"
                    " executor = COALESCE(:executor, executor), node = COALESCE(:node, node),"
                    " result = COALESCE(:result, result), error = COALESCE(:error, error),"
                    " updated_at = :now WHERE run_id = :id",
                    {**args, "now": self._clock()},
                )
                if cursor.rowcount == 0:
                    raise s.run_not_found(run_id)
                return must(one(conn, "SELECT * FROM runs WHERE run_id = ?", run_id))

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
            with transaction(conn):
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
            row = one(conn, sql, key_hash)
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

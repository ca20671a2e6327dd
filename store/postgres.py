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

The pool, the lifecycle and the error mapping are in :mod:`store._postgres_pool`;
this module holds the :class:`store.base.Store` methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from store import _schema as s
from store import base as b
from store._postgres_pool import PostgresPool, must
from store.errors import StoreError
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

__all__ = ["PostgresStore"]

_INSERT = {t: s.insert(t, mark="%({})s") for t in s.TABLES}
_INSERT_NEW = {t: f"{q} ON CONFLICT DO NOTHING" for t, q in _INSERT.items()}


class PostgresStore(PostgresPool, b.AppendTurn):
    """:class:`store.base.Store` on PostgreSQL; the methods are documented there.

    Raises :class:`StoreConfigError` at construction for a DSN psycopg cannot parse.
    ``clock`` stamps records; tests inject one for distinct, ordered timestamps.
    The constructor, lifecycle and pool come from :class:`PostgresPool`.
    """

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
            raise s.session_not_found(session_id)
        return s.from_row(Session, row)

    async def append_turns(
        self,
        session_id: str,
        turns: Sequence[NewTurn],
        *,
        context: dict[str, Any] | None = None,
        active_agent: str | b.Keep | None = b.KEEP,
    ) -> list[Turn]:
        # Checked storable before the database: nothing half-written on a bad value.
        checked = [s.new_turn(session_id, t.turn_id, t.role, t.content, t.meta) for t in turns]
        update = s.session_update(session_id, context=context, active_agent=active_agent, meta=None)
        find = "SELECT * FROM turns WHERE session_id = %s AND turn_id = %s"
        async with self._connection() as conn:

            async def stored() -> list[Any]:
                return [
                    await (await conn.execute(find, (session_id, t.turn_id))).fetchone()
                    for t in checked
                ]

            rows = await stored()
            if all(row is not None for row in rows):  # all repeats: nothing written
                return [s.from_row(Turn, row) for row in rows]
            async with conn.transaction():
                new = s.new_session(session_id, None, {}, self._clock())
                await conn.execute(_INSERT_NEW[Session], new)
                # The row lock orders concurrent appends: each sees the last count.
                cur = await conn.execute(
                    "SELECT turn_count FROM sessions WHERE id = %s FOR UPDATE", (session_id,)
                )
                last_seq = int(must(await cur.fetchone())["turn_count"])
                rows = await stored()  # the same turns may have won the lock before us
                if all(row is not None for row in rows):
                    return [s.from_row(Turn, row) for row in rows]
                now = self._clock()
                fresh = s.numbered(checked, rows, last_seq, now)
                for turn in fresh:
                    await conn.execute(_INSERT[Turn], s.to_row(turn))
                await conn.execute(
                    "UPDATE sessions SET turn_count = %(seq)s, updated_at = %(now)s,"
                    " context = COALESCE(%(context)s::jsonb, context),"
                    " active_agent = CASE WHEN %(keep)s THEN active_agent ELSE %(agent)s END"
                    " WHERE id = %(id)s",
                    {**update, "seq": fresh[-1].seq, "now": now},
                )
                rows = await stored()
        return [s.from_row(Turn, must(row)) for row in rows]

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
        row = await self._row(
            "UPDATE runs SET status = COALESCE(%(status)s, status),"
            " executor = COALESCE(%(executor)s, executor), node = COALESCE(%(node)s, node),"
            " result = COALESCE(%(result)s::jsonb, result),"
            " error = COALESCE(%(error)s::jsonb, error),"
            " updated_at = %(now)s WHERE run_id = %(id)s RETURNING *",
            {**args, "now": self._clock()},
        )
        if row is None:
            raise s.run_not_found(run_id)
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


if TYPE_CHECKING:
    _conforms: b.Store = PostgresStore("postgresql://localhost/x")

"""The schema: versioned migrations for both dialects, and records <-> rows.

:data:`MIGRATIONS` is an ordered list; each entry holds the statements for SQLite
and for PostgreSQL. A backend applies every migration newer than the highest
version in its ``schema_migrations`` table, each in ONE transaction together with
its ``schema_migrations`` row (both dialects have transactional DDL), so a failed
migration leaves the database at the previous version. Applying is idempotent.

To change the schema, append a migration; never edit one that has shipped.
Backends read :data:`MIGRATIONS` at call time, so tests can append one.

Records map to rows by name: a table's columns are its record's fields
(:func:`to_row`, :func:`from_row`, :func:`insert`), so both backends share one
mapping and one set of storability checks.

Type choices, the same in both dialects so records round-trip exactly:
timestamps are epoch seconds as 8-byte floats (``REAL`` / ``DOUBLE PRECISION``),
not ``TIMESTAMPTZ``, whose microsecond rounding would change a float on the way
back; JSON is ``TEXT`` in SQLite and ``JSONB`` in PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from store.base import Keep, check_text, encode_optional
from store.errors import AlreadyExists, NotFound, StoreConfigError, StoreError
from store.models import (
    ApiKey,
    Event,
    Feedback,
    PipelineDna,
    PipelineVersion,
    RunRecord,
    Session,
    TrainingRecord,
    Turn,
    check_run_status,
)

__all__ = ["MIGRATIONS", "MIGRATIONS_TABLE_POSTGRES", "MIGRATIONS_TABLE_SQLITE", "Migration"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: a version, what it does, and its statements per dialect."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


MIGRATIONS_TABLE_SQLITE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
)
MIGRATIONS_TABLE_POSTGRES = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
    " applied_at DOUBLE PRECISION NOT NULL)"
)


def _v1(json: str, real: str) -> tuple[str, ...]:
    # The first schema is the same in both dialects but for the JSON and float
    # type names; later migrations spell each dialect out.
    return (
        f"""CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            context {json} NOT NULL,
            meta {json} NOT NULL,
            active_agent TEXT,
            turn_count INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX sessions_updated ON sessions (updated_at DESC, id DESC)",
        "CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at DESC, id DESC)",
        f"""CREATE TABLE turns (
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            turn_id TEXT NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            meta {json} NOT NULL,
            created_at {real} NOT NULL,
            PRIMARY KEY (session_id, seq),
            UNIQUE (session_id, turn_id))""",
        f"""CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
            inputs {json} NOT NULL,
            executor TEXT,
            node TEXT,
            result {json},
            error {json},
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            pipeline_yaml TEXT)""",
        "CREATE INDEX runs_status ON runs (status, created_at)",
        "CREATE INDEX runs_executor ON runs (executor, created_at)",
        f"""CREATE TABLE checkpoints (
            run_key TEXT PRIMARY KEY,
            data {json} NOT NULL,
            updated_at {real} NOT NULL)""",
        f"""CREATE TABLE training_records (
            id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            pipeline_version TEXT NOT NULL,
            input {json} NOT NULL,
            output {json} NOT NULL,
            cost_usd {real} NOT NULL,
            latency_ms {real} NOT NULL,
            quality {real},
            feedback {json},
            created_at {real} NOT NULL)""",
        "CREATE INDEX training_created ON training_records (created_at, id)",
        "CREATE INDEX training_pipeline ON training_records (pipeline, created_at, id)",
        f"""CREATE TABLE events (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            data {json} NOT NULL,
            created_at {real} NOT NULL)""",
        "CREATE INDEX events_created ON events (created_at, id)",
        "CREATE INDEX events_kind ON events (kind, created_at, id)",
        f"""CREATE TABLE pipeline_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            yaml_text TEXT NOT NULL,
            dna {json} NOT NULL,
            created_at {real} NOT NULL,
            PRIMARY KEY (name, version))""",
        f"""CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            scopes {json} NOT NULL,
            created_at {real} NOT NULL,
            revoked_at {real},
            last_used_at {real})""",
        # A name is unique among live keys only, so a revoked name can be reissued.
        "CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL",
        # No foreign key to sessions: feedback may name a synthetic session of a
        # stateless API call; delete_session removes a session's feedback itself.
        f"""CREATE TABLE feedback (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            response_id TEXT NOT NULL,
            user_id TEXT,
            rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 10),
            text TEXT NOT NULL,
            created_at {real} NOT NULL)""",
        "CREATE INDEX feedback_session ON feedback (session_id, created_at, id)",
        "CREATE INDEX feedback_created ON feedback (created_at, id)",
    )


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "sessions, turns, runs, checkpoints, training records, events, "
        "pipeline versions, api keys, feedback",
        sqlite=_v1("TEXT", "REAL"),
        postgres=_v1("JSONB", "DOUBLE PRECISION"),
    ),
]


def checked(migrations: Sequence[Migration]) -> Sequence[Migration]:
    """Return ``migrations`` after checking versions are 1, 2, 3... in order.

    Raises :class:`StoreError` (``migration_failed``): a misnumbered list is a bug
    in this package, and applying it could skip a step.
    """
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise StoreError(
            f"migrations must be numbered {expected}, got {[m.version for m in migrations]}",
            code="migration_failed",
        )
    return migrations


def check_not_newer(current: int, migrations: Sequence[Migration], *, where: str) -> None:
    """Refuse a database migrated by newer code: this code would misread it."""
    if current > len(migrations):
        raise StoreConfigError(
            f"database {where} is at schema version {current}, newer than this code's "
            f"{len(migrations)}; upgrade elexirion"
        )


def failed(migration: Migration, exc: BaseException) -> StoreError:
    """The error for a migration that raised (and was rolled back)."""
    return StoreError(
        f"migration {migration.version} ({migration.description}) failed and was rolled "
        f"back: {exc}",
        code="migration_failed",
    )


# ---------------------------------------------------------------- records <-> rows
# Column names equal the records' field names, so one generic mapping serves
# every table. Parameters are by name; JSON goes in as checked text (PostgreSQL
# casts it to JSONB) and comes back as text (SQLite) or decoded (psycopg).

TABLES: dict[type[Any], str] = {
    Session: "sessions",
    Turn: "turns",
    RunRecord: "runs",
    TrainingRecord: "training_records",
    Event: "events",
    PipelineVersion: "pipeline_versions",
    ApiKey: "api_keys",
    Feedback: "feedback",
}
_JSON_COLUMNS = frozenset(
    {"context", "meta", "inputs", "result", "error", "input", "output", "feedback", "data"}
    | {"dna", "scopes"}
)
R = TypeVar("R")
Params = dict[str, Any]
Row = dict[str, Any]  # both backends fetch rows as dicts (psycopg dict_row)
Args = Sequence[Any] | dict[str, Any]  # statement parameters, by position or by name


def insert(record_type: type[Any], *, mark: str = ":{}") -> str:
    """``INSERT INTO <table> (<every field>) VALUES (<named placeholders>)``.

    ``mark`` formats one placeholder: ``":{}"`` for SQLite, ``"%({})s"`` for psycopg.
    """
    columns = [f.name for f in fields(record_type)]
    marks = ", ".join(mark.format(c) for c in columns)
    # Table and column names come from the record classes, never from callers.
    return f"INSERT INTO {TABLES[record_type]} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


def to_row(record: Any) -> Params:
    """The record's fields as statement parameters; raises :class:`InvalidRequest`
    for values one of the backends could not store (see :mod:`store.base`)."""
    table = TABLES[type(record)]
    row: Params = {}
    for f in fields(record):
        value = getattr(record, f.name)
        what = f"{table}.{f.name}"
        if isinstance(value, PipelineDna):
            value = value.to_dict()
        if f.name in _JSON_COLUMNS:
            row[f.name] = encode_optional(value, what=what)
        else:
            row[f.name] = check_text(value, what=what) if isinstance(value, str) else value
    return row


def from_row(record_type: Callable[..., R], row: Row) -> R:
    """Build a record from a row of its table."""
    values = {k: decode(v) if k in _JSON_COLUMNS else v for k, v in row.items()}
    if record_type is PipelineVersion:
        values["dna"] = PipelineDna.from_dict(values["dna"])
    return record_type(**values)


def decode(value: Any) -> Any:
    """A JSON column's value: decoded from SQLite text, as-is from psycopg JSONB.

    The store only writes objects and arrays there, so a ``str`` is always JSON text.
    """
    return json.loads(value) if isinstance(value, str) else value


def new_session(session_id: str, user_id: str | None, meta: dict[str, Any], now: float) -> Params:
    """A fresh ``sessions`` row: empty context, no active agent, no turns."""
    return to_row(
        Session(
            id=session_id, user_id=user_id, created_at=now, updated_at=now, context={},
            meta=meta, active_agent=None, turn_count=0,
        )
    )  # fmt: skip


def new_turn(
    session_id: str, turn_id: str, role: str, content: str, meta: dict[str, Any] | None
) -> Turn:
    """The turn ``append_turn`` stores, checked storable before the database is touched.

    ``seq`` and ``created_at`` are placeholders the backend fills in when it writes.
    """
    turn = Turn(
        session_id=session_id, seq=0, turn_id=turn_id, role=role, content=content,
        meta=meta or {}, created_at=0.0,
    )  # fmt: skip
    to_row(turn)  # raises InvalidRequest now, not half-way through a transaction
    return turn


def numbered(
    checked: Sequence[Turn], stored: Sequence[Any], last_seq: int, now: float
) -> list[Turn]:
    """The turns of ``checked`` to insert, numbered after ``last_seq``: those with no
    ``stored`` row yet, each turn id once (an id given twice is stored once)."""
    written = {t.turn_id for t, row in zip(checked, stored, strict=True) if row is not None}
    fresh: list[Turn] = []
    for turn in checked:
        if turn.turn_id not in written:
            written.add(turn.turn_id)
            fresh.append(replace(turn, seq=last_seq + len(fresh) + 1, created_at=now))
    return fresh


def session_update(
    session_id: str,
    *,
    context: dict[str, Any] | None,
    active_agent: str | Keep | None,
    meta: dict[str, Any] | None,
) -> Params:
    """Parameters of the ``update_session`` statement (``keep``: leave the agent)."""
    return _checked({
        "id": session_id,
        "context": encode_optional(context, what="sessions.context"),
        "meta": encode_optional(meta, what="sessions.meta"),
        "keep": isinstance(active_agent, Keep),
        "agent": None if isinstance(active_agent, Keep) else active_agent,
    })  # fmt: skip


def run_update(
    run_id: str,
    *,
    status: str | None,
    executor: str | None,
    node: str | None,
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> Params:
    """Parameters of the ``update_run`` statement (``None``: leave the column)."""
    if status is not None:
        check_run_status(status)
    return _checked({
        "id": run_id, "status": status, "executor": executor, "node": node,
        "result": encode_optional(result, what="runs.result"),
        "error": encode_optional(error, what="runs.error"),
    })  # fmt: skip


def _checked(params: Params) -> Params:
    for name, value in params.items():
        if isinstance(value, str):
            check_text(value, what=name)
    return params


def version_exists(version: PipelineVersion) -> AlreadyExists:
    """The error for a (name, version) that is already stored."""
    return AlreadyExists(
        f"pipeline {version.name!r} already has version {version.version}",
        kind="pipeline_version",
        key=f"{version.name}@{version.version}",
    )


def api_key_exists(key: ApiKey, detail: str) -> AlreadyExists:
    """The error for a key whose id, hash or live name is taken; ``detail`` says which."""
    return AlreadyExists(
        f"API key {key.name!r} clashes with a stored key ({detail})", kind="api_key", key=key.name
    )


def session_not_found(session_id: str) -> NotFound:
    """The error for updating a session that is not stored."""
    return NotFound(f"no session {session_id!r}", kind="session", key=session_id)


def run_not_found(run_id: str) -> NotFound:
    """The error for updating a run that is not stored."""
    return NotFound(f"no run {run_id!r}", kind="run", key=run_id)

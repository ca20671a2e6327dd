"""SQLite specifics: pragmas, durability, locking, migrations on a file, URLs and bad paths."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from store import _schema, errors
from store.factory import DEFAULT_SQLITE_PATH, open_store, store_from_url
from store.sqlite import SqliteStore
from tests.unit.store.conftest import Backend

V2 = _schema.Migration(
    2,
    "sessions.tag",
    sqlite=(
        "ALTER TABLE sessions ADD COLUMN tag TEXT",
        "CREATE INDEX sessions_tag ON sessions (tag)",
    ),
    postgres=(
        "ALTER TABLE sessions ADD COLUMN tag TEXT",
        "CREATE INDEX sessions_tag ON sessions (tag)",
    ),
)


def _read(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


async def test_connection_uses_wal_full_sync_and_foreign_keys(sqlite_backend: Backend) -> None:
    """The connection runs WAL, synchronous=FULL, foreign keys on, busy timeout 5 s."""
    store = await sqlite_backend.open()
    assert isinstance(store, SqliteStore)
    assert await store.pragmas() == {
        "journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 5000,
    }  # fmt: skip


async def test_appended_turn_is_committed_when_append_returns(sqlite_backend: Backend) -> None:
    """A second, independent connection sees the turn as soon as append_turn returns."""
    store = await sqlite_backend.open()
    await store.append_turn("s1", turn_id="t1", role="user", content="durable")
    rows = _read(sqlite_backend.sqlite_path, "SELECT seq, content FROM turns")
    assert rows == [(1, "durable")]
    assert store  # still open: nothing was flushed by closing


async def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    """Opening a store under a path that does not exist yet creates its directories."""
    path = tmp_path / "a" / "b" / "c.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        assert path.is_file()
    finally:
        await store.close()


async def test_lock_beyond_busy_timeout_is_unavailable_and_retryable(
    sqlite_backend: Backend,
) -> None:
    """A write blocked by another writer past busy_timeout raises retryable StoreUnavailable; a retry works."""
    store = await sqlite_backend.open(busy_timeout_ms=50)
    other = sqlite3.connect(sqlite_backend.sqlite_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(errors.StoreUnavailable) as info:
            await store.append_turn("s", turn_id="t", role="user", content="x")
        assert info.value.retryable and info.value.code == "store_unavailable"
        assert "locked" in str(info.value)
        other.execute("ROLLBACK")
    finally:
        other.close()
    turn = await store.append_turn("s", turn_id="t", role="user", content="x")
    assert turn.seq == 1


async def test_v1_database_is_upgraded_by_an_appended_migration(
    sqlite_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at v1 gets v2 applied on the next migrate(), keeping its data; again is a no-op."""
    monkeypatch.setattr(_schema, "MIGRATIONS", _schema.MIGRATIONS[:1])
    old = await sqlite_backend.open()
    await old.append_turn("s", turn_id="t", role="user", content="kept")
    await old.close()
    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, V2])
    new = await sqlite_backend.open(migrate=False)
    assert await new.migrate() == 2
    assert await new.migrate() == 2
    path = sqlite_backend.sqlite_path
    assert [r[0] for r in _read(path, "SELECT version FROM schema_migrations")] == [1, 2]
    assert _read(path, "SELECT id, tag FROM sessions") == [("s", None)]
    assert [t.content for t in await new.turns("s")] == ["kept"]


async def test_failed_migration_is_rolled_back(
    sqlite_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration failing half-way leaves no trace and the version unchanged; the store still works."""
    broken = _schema.Migration(
        2, "broken", sqlite=("CREATE TABLE extra (x INTEGER)", "NOT SQL"), postgres=()
    )
    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, broken])
    store = await sqlite_backend.open(migrate=False)
    with pytest.raises(errors.StoreError) as info:
        await store.migrate()
    assert info.value.code == "migration_failed" and "broken" in str(info.value)
    tables = _read(
        sqlite_backend.sqlite_path, "SELECT name FROM sqlite_master WHERE name = 'extra'"
    )
    assert tables == []
    assert _read(sqlite_backend.sqlite_path, "SELECT MAX(version) FROM schema_migrations") == [(1,)]
    assert (await store.append_turn("s", turn_id="t", role="user", content="x")).seq == 1


async def test_database_newer_than_the_code_is_refused(sqlite_backend: Backend) -> None:
    """migrate() on a database at a version this code does not know raises StoreConfigError."""
    store = await sqlite_backend.open()
    with sqlite3.connect(sqlite_backend.sqlite_path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(errors.StoreConfigError, match="newer"):
        await store.migrate()


async def test_misnumbered_migrations_are_refused(
    sqlite_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration list that skips a version is a bug, refused before anything is applied."""
    monkeypatch.setattr(
        _schema, "MIGRATIONS", [*_schema.MIGRATIONS, dataclasses.replace(V2, version=3)]
    )
    store = await sqlite_backend.open(migrate=False)
    with pytest.raises(errors.StoreError, match="numbered"):
        await store.migrate()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///rel/dir/e.db", "rel/dir/e.db"),
        ("sqlite://", DEFAULT_SQLITE_PATH),
        (None, DEFAULT_SQLITE_PATH),
    ],
)
async def test_sqlite_urls_resolve_like_sqlalchemy(
    url: str | None, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///rel is relative to the working directory; no URL or sqlite:// is the default file."""
    monkeypatch.chdir(tmp_path)
    store = await open_store(url)
    try:
        assert (tmp_path / expected).is_file()
    finally:
        await store.close()


async def test_absolute_and_memory_urls(tmp_path: Path) -> None:
    """sqlite:////abs is absolute; sqlite:///:memory: works without a file."""
    absolute = store_from_url(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SqliteStore) and absolute.path == f"{tmp_path}/abs.db"
    memory = await open_store("sqlite:///:memory:")
    try:
        assert (await memory.append_turn("s", turn_id="t", role="user", content="x")).seq == 1
    finally:
        await memory.close()


@pytest.mark.parametrize(
    "url",
    ["mysql://root:hunter2@db/x", "/just/a/path.db", "sqlite://host:hunter2@h/x.db"],
)
def test_bad_urls_are_config_errors_without_the_password(url: str) -> None:
    """Unknown schemes, bare paths and SQLite URLs with a host raise StoreConfigError, password redacted."""
    with pytest.raises(errors.StoreConfigError) as info:
        store_from_url(url)
    assert "hunter2" not in str(info.value)


def test_schema_option_is_postgresql_only() -> None:
    """Passing a schema for a SQLite URL is a configuration error."""
    with pytest.raises(errors.StoreConfigError, match="PostgreSQL"):
        store_from_url("sqlite:///x.db", schema="s")


async def test_unopenable_paths_are_config_errors(tmp_path: Path) -> None:
    """A directory or a file that is not a database raises StoreConfigError from open_store."""
    (tmp_path / "dir.db").mkdir()
    (tmp_path / "junk.db").write_bytes(b"this is not a database, just bytes " * 200)
    for name in ("dir.db", "junk.db"):
        with pytest.raises(errors.StoreConfigError, match=name):
            await open_store(f"sqlite:///{tmp_path / name}")


async def test_concurrent_writes_share_commits(sqlite_backend: Backend) -> None:
    """Writes that wait while the worker is busy commit together (one fsync for many):
    60 concurrent appends take far fewer COMMITs than 60, and every turn is stored."""
    store = await sqlite_backend.open()
    assert isinstance(store, SqliteStore)
    statements: list[str] = []
    await store._call(lambda c: c.set_trace_callback(statements.append))
    turns = await asyncio.gather(
        *(store.append_turn("s1", turn_id=f"t{i}", role="user", content="x") for i in range(60))
    )
    await store._call(lambda c: c.set_trace_callback(None))
    commits = sum(1 for s in statements if s.strip().upper() == "COMMIT")
    assert 1 <= commits < 20, commits
    assert sorted(t.seq for t in turns) == list(range(1, 61))
    rows = _read(sqlite_backend.sqlite_path, "SELECT COUNT(*) FROM turns")
    assert rows == [(60,)]  # committed: another connection sees them all


async def test_a_failing_call_in_a_group_leaves_the_others_committed(
    sqlite_backend: Backend,
) -> None:
    """One call of a group fails (its own changes undone, its caller gets the error); the
    calls around it in the same commit succeed."""
    store = await sqlite_backend.open()
    await store.create_session("s1")
    results = await asyncio.gather(
        store.append_turn("s1", turn_id="a", role="user", content="1"),
        store.update_session("missing", context={"x": 1}),
        store.append_turn("s1", turn_id="b", role="user", content="2"),
        return_exceptions=True,
    )
    assert isinstance(results[1], errors.NotFound)
    assert [t.turn_id for t in await store.turns("s1")] == ["a", "b"]
    assert _read(sqlite_backend.sqlite_path, "SELECT COUNT(*) FROM sessions") == [(1,)]


async def test_a_broken_group_commit_fails_its_callers_instead_of_hanging(
    sqlite_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If running a group blows up outside any one call, every caller of the group gets
    a StoreError (none waits forever), and the store keeps serving afterwards."""
    store = await sqlite_backend.open()
    assert isinstance(store, SqliteStore)

    def broken(ops: object) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_run_group", broken)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(store.append_turn("s1", turn_id=f"t{i}", role="user", content="x") for i in range(5)),
            return_exceptions=True,
        ),
        timeout=10,
    )
    assert all(isinstance(r, errors.StoreError) and "disk on fire" in str(r) for r in results)
    monkeypatch.undo()
    assert (await store.append_turn("s1", turn_id="after", role="user", content="x")).seq == 1

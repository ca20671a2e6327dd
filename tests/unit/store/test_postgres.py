"""PostgreSQL specifics: failing fast, durability, schemas, migrations, cross-pool concurrency."""

from __future__ import annotations

import asyncio
import pickle
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest

from store import _schema, errors
from store.factory import open_store
from store.postgres import PostgresStore
from tests.unit.store.conftest import PG_DSN, Backend

V2 = _schema.Migration(
    2,
    "sessions.tag",
    sqlite=("ALTER TABLE sessions ADD COLUMN tag TEXT",),
    postgres=(
        "ALTER TABLE sessions ADD COLUMN tag TEXT",
        "CREATE INDEX sessions_tag ON sessions (tag)",
    ),
)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


async def test_unreachable_server_fails_fast_without_the_password() -> None:
    """open_store on a closed port raises retryable StoreUnavailable at once, naming host, port and db but not the password."""
    started = time.monotonic()
    with pytest.raises(errors.StoreUnavailable) as info:
        await open_store("postgresql://postgres:s3cret@127.0.0.1:1/test")
    assert time.monotonic() - started < 3
    exc = info.value
    assert (exc.code, exc.retryable, exc.backend) == ("store_unavailable", True, "postgresql")
    assert exc.target == "127.0.0.1:1/test" and "127.0.0.1:1/test" in str(exc)
    assert "s3cret" not in str(exc) and "s3cret" not in repr(exc)
    assert b"s3cret" not in pickle.dumps(exc)


async def test_ping_of_an_unreachable_server_is_false() -> None:
    """ping() reports an unreachable server as False, quickly, instead of raising."""
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test")
    started = time.monotonic()
    assert await store.ping() is False
    assert time.monotonic() - started < 3
    await store.close()


async def test_silent_server_times_out_instead_of_hanging(silent_server: int) -> None:
    """A server that never answers makes open() fail after connect_timeout (2 s), not hang."""
    store = PostgresStore(
        f"postgresql://postgres@127.0.0.1:{silent_server}/test", connect_timeout=2
    )
    started = time.monotonic()
    with pytest.raises(errors.StoreUnavailable, match=f"127.0.0.1:{silent_server}"):
        await asyncio.wait_for(store.migrate(), timeout=10)
    assert time.monotonic() - started < 5
    await store.close()


def test_unparsable_dsn_is_a_config_error_without_the_password() -> None:
    """A DSN psycopg cannot parse raises StoreConfigError at construction, password redacted."""
    with pytest.raises(errors.StoreConfigError) as info:
        PostgresStore("postgresql://u:hunter2@[bad")
    assert "hunter2" not in str(info.value)


async def test_appended_turn_is_committed_when_append_returns(pg_backend: Backend) -> None:
    """A separate connection sees the turn as soon as append_turn returns."""
    store = await pg_backend.open()
    await store.append_turn("s1", turn_id="t1", role="user", content="durable")
    async with await pg_backend.pg_connect() as conn:
        cur = await conn.execute("SELECT seq, content FROM turns")
        assert await cur.fetchall() == [(1, "durable")]


async def test_tables_live_in_the_schema_with_jsonb_columns(pg_backend: Backend) -> None:
    """Every table is created in the store's schema, and JSON columns are JSONB."""
    await pg_backend.open()
    async with await psycopg.AsyncConnection.connect(PG_DSN) as conn:
        cur = await conn.execute(
            "SELECT table_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND column_name IN ('context', 'data', 'dna')",
            (pg_backend.schema,),
        )
        assert sorted(await cur.fetchall()) == [
            ("checkpoints", "jsonb"), ("events", "jsonb"), ("pipeline_versions", "jsonb"),
            ("sessions", "jsonb"),
        ]  # fmt: skip


async def test_v1_database_is_upgraded_by_an_appended_migration(
    pg_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema at v1 gets v2 applied on the next migrate(), keeping its data; again is a no-op."""
    monkeypatch.setattr(_schema, "MIGRATIONS", _schema.MIGRATIONS[:1])
    old = await pg_backend.open()
    await old.append_turn("s", turn_id="t", role="user", content="kept")
    await old.close()
    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, V2])
    new = await pg_backend.open(migrate=False)
    assert await new.migrate() == 2
    assert await new.migrate() == 2
    async with await pg_backend.pg_connect() as conn:
        versions = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
        assert versions == [(1,), (2,)]
        assert await (await conn.execute("SELECT id, tag FROM sessions")).fetchall() == [
            ("s", None)
        ]
    assert [t.content for t in await new.turns("s")] == ["kept"]


async def test_failed_migration_is_rolled_back(
    pg_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration failing half-way leaves no table behind and the version unchanged."""
    broken = _schema.Migration(
        2, "broken", sqlite=(), postgres=("CREATE TABLE extra (x INT)", "NOT SQL")
    )
    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, broken])
    store = await pg_backend.open(migrate=False)
    with pytest.raises(errors.StoreError) as info:
        await store.migrate()
    assert info.value.code == "migration_failed"
    async with await pg_backend.pg_connect() as conn:
        assert await (await conn.execute("SELECT to_regclass('extra')")).fetchone() == (None,)
        cur = await conn.execute("SELECT MAX(version) FROM schema_migrations")
        assert await cur.fetchone() == (1,)
    assert (await store.append_turn("s", turn_id="t", role="user", content="x")).seq == 1


async def test_database_newer_than_the_code_is_refused(pg_backend: Backend) -> None:
    """migrate() on a schema at a version this code does not know raises StoreConfigError."""
    store = await pg_backend.open()
    async with await pg_backend.pg_connect() as conn:
        await conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(errors.StoreConfigError, match="newer"):
        await store.migrate()


async def test_concurrent_migrations_apply_each_version_once(
    pg_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stores migrating one fresh schema at once both succeed; each version is applied once."""
    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, V2])
    first, second = pg_backend.build(), pg_backend.build()
    await first.open()  # creates the schema before the race
    assert list(await asyncio.gather(first.migrate(), second.migrate())) == [2, 2]
    async with await pg_backend.pg_connect() as conn:
        versions = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
        assert versions == [(1,), (2,)]


async def test_appends_through_two_pools_stay_gap_free(pg_backend: Backend) -> None:
    """Two stores (two pools, as two processes would have) appending to one session get seq 1..40."""
    first = await pg_backend.open()
    second = await pg_backend.open(migrate=False)
    async with asyncio.TaskGroup() as tg:
        for i in range(40):
            store = first if i % 2 else second
            tg.create_task(store.append_turn("s", turn_id=f"t{i}", role="user", content="x"))
    assert [t.seq for t in await first.turns("s")] == list(range(1, 41))


async def test_store_recovers_after_the_server_drops_its_connections(pg_backend: Backend) -> None:
    """After the server terminates every pooled connection, the next call gets a fresh one and works."""
    store = await pg_backend.open(min_size=2)
    await store.append_turn("s", turn_id="t1", role="user", content="before")
    async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (f"elexirion/{pg_backend.schema}",),
        )
        assert await cur.fetchall(), "the store's connections were found and terminated"
    turn = await store.append_turn("s", turn_id="t2", role="user", content="after")
    assert turn.seq == 2 and await store.ping()

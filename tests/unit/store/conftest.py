"""Store fixtures: every contract test runs on SQLite and on PostgreSQL.

SQLite lives in ``tmp_path``. PostgreSQL comes from ``ELEXIRION_TEST_PG_DSN``
(default ``postgresql://postgres@127.0.0.1:5432/test``); each test gets its own
schema ``t_<12 hex>``, dropped (CASCADE) afterwards. An unreachable server FAILS
the PostgreSQL tests with a message saying so; they never skip, because CI
provides the server and a silent skip would hide a broken backend.

Stores get a :class:`TickingClock`, so timestamps are distinct and ordered and
ordering tests do not depend on the machine's clock resolution.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from store.base import Store, redact_url
from store.errors import StoreUnavailable
from store.postgres import PostgresStore
from store.sqlite import SqliteStore

PG_DSN = os.environ.get("ELEXIRION_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


class TickingClock:
    """Returns ``start + n * step`` on the n-th reading; thread-safe (SQLite's worker reads it)."""

    def __init__(self, start: float = 1_700_000_000.0, step: float = 0.001) -> None:
        self.now = start
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self.step
            return self.now


@dataclass
class Backend:
    """Builds stores of one backend on one database (file or schema) for a test."""

    name: str
    tmp_path: Path
    clock: TickingClock = field(default_factory=TickingClock)
    schema: str = field(default_factory=lambda: f"t_{uuid.uuid4().hex[:12]}")
    stores: list[Store] = field(default_factory=list)

    @property
    def sqlite_path(self) -> Path:
        return self.tmp_path / "db" / "store.db"

    def build(self, **options: Any) -> Store:
        """An unopened store on this test's database; closed at teardown."""
        store: Store
        if self.name == "sqlite":
            store = SqliteStore(self.sqlite_path, clock=self.clock, **options)
        else:
            store = PostgresStore(PG_DSN, schema=self.schema, clock=self.clock, **options)
        self.stores.append(store)
        return store

    async def open(self, *, migrate: bool = True, **options: Any) -> Store:
        """A connected (and by default migrated) store; an absent server fails the test."""
        store = self.build(**options)
        unreachable = ""
        try:
            await store.open()
        except StoreUnavailable as exc:
            if self.name != "postgresql":
                raise
            unreachable = str(exc)
        if unreachable:  # failed outside the except block: no chained traceback noise
            pytest.fail(
                f"PostgreSQL for the store tests is unreachable at {redact_url(PG_DSN)} "
                f"({unreachable}). Start it or point ELEXIRION_TEST_PG_DSN at one; "
                "these tests never skip.",
                pytrace=False,
            )
        if migrate:
            await store.migrate()
        return store

    async def pg_connect(self) -> psycopg.AsyncConnection[Any]:
        """A separate connection to the test's schema (not through the store)."""
        conn = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    async def teardown(self) -> None:
        for store in self.stores:
            await store.close()
        if self.name == "postgresql":
            try:
                conn = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
            except psycopg.OperationalError:
                return  # the server is gone; the test has already failed saying so
            async with conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(self.schema)
                )
                await conn.execute(drop)


async def _backend(name: str, tmp_path: Path) -> AsyncIterator[Backend]:
    backend = Backend(name, tmp_path)
    try:
        yield backend
    finally:
        await backend.teardown()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend in turn, with teardown of every store it built."""
    async for b in _backend(request.param, tmp_path):
        yield b


@pytest.fixture
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    """The SQLite backend only."""
    async for b in _backend("sqlite", tmp_path):
        yield b


@pytest.fixture
async def pg_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    """The PostgreSQL backend only."""
    async for b in _backend("postgresql", tmp_path):
        yield b


@pytest.fixture
async def store(backend: Backend) -> Store:
    """An open, migrated store of each backend."""
    return await backend.open()

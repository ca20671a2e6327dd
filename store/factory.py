"""Build a store from a URL: ``sqlite:///path`` or ``postgresql://...``.

``store_from_url`` only parses (no I/O); ``open_store`` also connects and applies
migrations, so a misconfigured or unreachable database fails at start-up:
:class:`StoreConfigError` for a URL that cannot work, :class:`StoreUnavailable`
for a database that does not answer (PostgreSQL fails within its connect
timeout, never hangs). A store ``open_store`` could not finish opening is closed
before the error propagates.

SQLite URLs follow the SQLAlchemy convention: ``sqlite:///rel/path.db`` is
relative to the working directory, ``sqlite:////abs/path.db`` absolute,
``sqlite:///:memory:`` in memory (tests), and ``sqlite://`` the default file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from store.base import Store, redact_url
from store.errors import StoreConfigError
from store.sqlite import SqliteStore

__all__ = ["DEFAULT_SQLITE_PATH", "DEFAULT_URL", "open_store", "store_from_url"]

DEFAULT_SQLITE_PATH = ".elexirion/elexirion.db"
DEFAULT_URL = f"sqlite:///{DEFAULT_SQLITE_PATH}"
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def store_from_url(
    url: str | None = None, *, schema: str | None = None, clock: Callable[[], float] = time.time
) -> Store:
    """An unopened store for ``url`` (default :data:`DEFAULT_URL`).

    ``schema`` (PostgreSQL only) isolates the store's tables in that schema.
    Raises :class:`StoreConfigError` for an unknown scheme or a malformed URL;
    the message shows the URL with its password redacted.
    """
    url = url or DEFAULT_URL
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite" and sep:
        if schema is not None:
            raise StoreConfigError("the schema option applies to PostgreSQL stores only")
        if rest and not rest.startswith("/"):
            raise StoreConfigError(
                f"SQLite URL {redact_url(url)!r} names a host; use sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        return SqliteStore(rest[1:] or DEFAULT_SQLITE_PATH, clock=clock)
    if scheme in _POSTGRES_SCHEMES and sep:
        from store.postgres import PostgresStore  # psycopg loads only when it is used

        return PostgresStore(url, schema=schema, clock=clock)
    raise StoreConfigError(
        f"unknown store URL {redact_url(url)!r}: expected sqlite:///path/to.db or "
        "postgresql://user@host:port/dbname"
    )


async def open_store(
    url: str | None = None,
    *,
    schema: str | None = None,
    migrate: bool = True,
    clock: Callable[[], float] = time.time,
) -> Store:
    """Build, connect and (unless ``migrate=False``) migrate the store for ``url``.

    Raises :class:`StoreConfigError` (bad URL, unopenable file, database newer than
    this code) or :class:`StoreUnavailable` (the database does not answer).
    """
    store = store_from_url(url, schema=schema, clock=clock)
    try:
        await store.open()
        if migrate:
            await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store

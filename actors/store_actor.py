"""The ``store`` actor owns the database (the SQLite file, or a PostgreSQL pool);
:class:`StoreClient` gives every other actor the :class:`store.Store` interface
over it.

Failure semantics: a write acknowledged by the store actor is committed (the
store implementations are durable on return). If the store actor dies mid-call
the caller sees ``RayActorError``; :class:`StoreClient` re-sends idempotent calls
(reads, and writes keyed by turn id / run id / run key) once the supervisor has
re-created the actor, and re-raises for the others (events, training records,
feedback), whose caller decides.
"""

from __future__ import annotations

from typing import Any

from actors._ray import ActorRef
from actors.base import Supervised

__all__ = ["IDEMPOTENT", "STORE_METHODS", "StoreActorImpl", "StoreClient"]

#: Store methods callable through the actor, and whether a re-send is safe.
IDEMPOTENT = frozenset(
    {
        "ping",
        "create_session",
        "get_session",
        "list_sessions",
        "delete_session",
        "append_turn",
        "append_turns",
        "turns",
        "update_session",
        "create_run",
        "update_run",
        "get_run",
        "list_runs",
        "save_checkpoint",
        "load_checkpoint",
        "clear_checkpoint",
        "training_records",
        "events",
        "pipeline_versions",
        "latest_pipeline_version",
        "find_api_key",
        "list_api_keys",
        "revoke_api_key",
        "feedback",
    }
)
STORE_METHODS = IDEMPOTENT | {
    "add_training_record",
    "add_events",
    "save_pipeline_version",
    "create_api_key",
    "add_feedback",
}


class StoreActorImpl(Supervised):
    """Opens the store at ``url`` and serves :data:`STORE_METHODS`."""

    def __init__(self, path: str, url: str) -> None:
        self._init_supervised(path)
        self._url = url
        self._store: Any = None

    async def on_ready(self) -> None:
        from store.factory import open_store

        if self._store is None:
            self._store = await _maybe_await(open_store(self._url))
            await self._store.migrate()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method not in STORE_METHODS:
            raise AttributeError(f"store has no method {method!r}")
        if self._store is None:
            await self.on_ready()
        return await getattr(self._store, method)(*args, **kwargs)

    async def on_stop(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None


async def _maybe_await(value: Any) -> Any:
    return await value if hasattr(value, "__await__") else value


class StoreClient:
    """The store interface, served by the ``store`` actor (async methods)."""

    backend = "remote"

    def __init__(self, ref: ActorRef | None = None) -> None:
        self._ref = ref or ActorRef("store", deadline_s=15.0)

    def __getattr__(self, name: str) -> Any:
        if name not in STORE_METHODS:
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._ref.call("call", name, *args, retry=name in IDEMPOTENT, **kwargs)

        call.__name__ = name
        return call

    async def migrate(self) -> int:
        return 0  # the store actor migrates on start

    async def close(self) -> None:
        """Nothing to close: the actor owns the connection."""

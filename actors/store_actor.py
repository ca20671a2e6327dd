"""The ``store`` actor owns the database (the SQLite file, or a PostgreSQL pool);
:class:`StoreClient` gives every other actor the :class:`store.Store` interface
over it.

Failure semantics: a write acknowledged by the store actor is committed (the
store implementations are durable on return). If the store actor dies mid-call
the caller sees ``RayActorError``; :class:`StoreClient` re-sends idempotent calls
(reads, and writes keyed by turn id / run id / run key) once the supervisor has
re-created the actor, and re-raises for the others (events, training records,
feedback), whose caller decides.

Calls on a chat turn's path (:data:`COALESCED`) travel together: a process has at most
two batches at the store at once (two, so one slow read does not hold up every turn),
and its calls that arrive meanwhile leave in one actor call
(:class:`actors.batches.Coalescer`); the store runs them at once, so SQLite commits
them in one transaction. Each caller still gets its own result or exception. A batch
whose store died is re-sent call by call, with the re-send rule above.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray.exceptions import RayActorError

from actors._ray import ActorMissing, ActorRef
from actors.base import Supervised
from actors.batches import Coalescer, outcome

__all__ = ["COALESCED", "IDEMPOTENT", "STORE_METHODS", "StoreActorImpl", "StoreClient"]

#: One store call as it travels in a batch: method name, positional and keyword args.
Call = tuple[str, tuple[Any, ...], dict[str, Any]]

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
#: The calls of a chat turn (small, keyed, idempotent): coalesced per process. Listings
#: and bulk reads go alone, so a slow one never holds up a turn's writes.
COALESCED = frozenset(
    {
        "create_session",
        "get_session",
        "append_turn",
        "append_turns",
        "turns",
        "create_run",
        "update_run",
        "get_run",
        "save_checkpoint",
        "load_checkpoint",
        "clear_checkpoint",
        "find_api_key",
    }
)
assert COALESCED <= IDEMPOTENT  # noqa: S101 - a failed batch is re-sent call by call
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

    async def call_many(self, calls: list[Call]) -> list[tuple[bool, Any]]:
        """Run ``calls`` at once; ``(True, result)`` or ``(False, exception)`` each."""

        runs = (outcome(self.call(method, *args, **kwargs)) for method, args, kwargs in calls)
        return list(await asyncio.gather(*runs))

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
        self._batches: Coalescer[Call] = Coalescer(self._send_batch, max_items=64, max_in_flight=2)

    def __reduce__(self) -> tuple[Any, ...]:
        return (StoreClient, (self._ref,))

    def __getattr__(self, name: str) -> Any:
        if name not in STORE_METHODS:
            raise AttributeError(name)

        if name in COALESCED:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await self._batches.submit((name, args, kwargs))

        else:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await self._alone(name, args, kwargs)

        call.__name__ = name
        return call

    async def _alone(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return await self._ref.call("call", name, *args, retry=name in IDEMPOTENT, **kwargs)

    async def _send_batch(self, calls: list[Call]) -> list[tuple[bool, Any]]:
        if len(calls) == 1:  # nothing to gather: the plain call (and its re-send rule)
            return [await outcome(self._alone(*calls[0]))]
        try:
            outcomes: list[tuple[bool, Any]] = await self._ref.call("call_many", calls, retry=False)
            return outcomes
        except (RayActorError, ActorMissing):
            pass  # the store died with the batch: each call again, on its own
        return list(await asyncio.gather(*(outcome(self._alone(*call)) for call in calls)))

    async def migrate(self) -> int:
        return 0  # the store actor migrates on start

    async def close(self) -> None:
        """Nothing to close: the actor owns the connection."""

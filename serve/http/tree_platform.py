"""The platform as the running tree: what the Serve ingress replicas talk to.

Each call goes straight to the actor that owns the work, by name: a turn to the
session's shard (one hop, then shard → router, shard → agent → executor), tokens
from the ``streams`` actor, reads to the ``store`` actor, numbers from
``telemetry``. Handles re-resolve after restarts (:class:`actors._ray.ActorRef`);
a turn is re-sent under the same turn id, so a shard that dies mid-turn costs a
retry, not a duplicate.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import ray

from actors._ray import ActorRef
from actors.sessions import shard_for
from actors.store_actor import StoreClient
from serve.http.local_platform import StoreViews
from serve.http.turns import stream_turn

__all__ = ["TreePlatform"]


class TreePlatform(StoreViews):
    """:class:`~serve.http.platform.Platform` over the tree's named actors."""

    def __init__(self, shards: int, *, workspace: str) -> None:
        self.shards = shards
        self.workspace = workspace
        self._shards = [ActorRef(f"sessions/shard-{i}", deadline_s=30.0) for i in range(shards)]
        self._streams = ActorRef("streams", deadline_s=5.0)
        self._telemetry = ActorRef("telemetry", deadline_s=5.0)
        self._gateway = ActorRef("gateway", deadline_s=5.0)
        self._executors = ActorRef("executors", deadline_s=30.0)
        self._store = StoreClient()
        self._runs: set[asyncio.Task[Any]] = set()

    @property
    def store(self) -> Any:
        return self._store

    def _shard(self, session_id: str) -> ActorRef:
        return self._shards[shard_for(session_id, self.shards)]

    async def chat(
        self,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        turn_id: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        session_id = session_id or uuid.uuid4().hex
        turn_id = turn_id or uuid.uuid4().hex
        return dict(
            await self._shard(session_id).call(
                "handle_request",
                message,
                session_id,
                turn_id,
                user_id,
                self.workspace,
                None,
                agent,
            )
        )

    async def chat_events(
        self,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        turn_id: str | None = None,
        agent: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        session_id = session_id or uuid.uuid4().hex
        key = turn_id or uuid.uuid4().hex
        handle = self._shard(session_id).handle()
        ref = handle.handle_request.remote(
            message, session_id, key, user_id, self.workspace, key, agent
        )

        async def turn() -> dict[str, Any]:
            return dict(await ref)

        async def pull(k: str, cursor: int, timeout_s: float) -> dict[str, Any]:
            return dict(await self._streams.call("pull", k, cursor, timeout_s, retry=False))

        async def cancel(k: str) -> None:
            await self._streams.call("cancel", k, retry=False)

        async def drop(k: str) -> None:
            await self._streams.call("drop", k, retry=False)

        async for event in stream_turn(
            key,
            turn(),
            pull=pull,
            cancel_stream=cancel,
            drop_stream=drop,
            cancel_turn=lambda: ray.cancel(ref),
        ):
            yield event

    async def workflow(
        self,
        message: str,
        *,
        session_id: str | None = None,
        builtin: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        session_id = session_id or uuid.uuid4().hex
        return dict(
            await self._shard(session_id).call(
                "execute_workflow",
                message,
                session_id,
                builtin,
                user_id,
                self.workspace,
                retry=False,
            )
        )

    async def delete_session(self, session_id: str) -> None:
        if not await self._store.delete_session(session_id):
            raise LookupError(f"no session {session_id!r}")
        await self._shard(session_id).call("forget", session_id)

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        return dict(
            await self._shard(session_id).call(
                "rate_response", session_id, response_id, rating, feedback, retry=False
            )
        )

    async def start_run(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        async def run(run_id: str) -> Any:
            return await self._executors.call("run", name, inputs, run_id)

        return await self._start_run(name, inputs, run)

    async def metrics(self) -> dict[str, Any]:
        from actors.status import status_rows

        snapshot = dict(await self._telemetry.call("metrics"))
        try:
            gateway = await self._gateway.call("snapshot", retry=False)
            snapshot["breakers"] = {
                str(b.get("key") or b.get("name")): str(b.get("state", "closed")).lower()
                for b in gateway.get("breakers", [])
                if isinstance(b, dict)
            }
        except Exception:  # noqa: BLE001 - the gateway restarting: no breaker view this time
            snapshot["breakers"] = {}
        rows = await asyncio.to_thread(status_rows)
        snapshot["tree"] = [
            {k: row.get(k) for k in ("path", "class", "state", "restarts", "node", "pid")}
            for row in rows or []
        ]
        return snapshot

    async def ready(self) -> dict[str, Any]:
        from actors._ray import lookup

        checks: dict[str, str] = {}
        checks["tree"] = "ok" if await asyncio.to_thread(lookup, "app") is not None else "down"
        try:
            checks["store"] = "ok" if await self._store.ping() else "down"
        except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
            checks["store"] = f"down: {type(exc).__name__}"
        return {"ready": all(v == "ok" for v in checks.values()), "checks": checks}

    async def close(self) -> None:
        await self._cancel_runs()

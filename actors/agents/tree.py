"""The chat backend over a running tree (``elexirion up``): the shards do the turns.

Every call goes to the session's shard (``shard_for``), which runs the
:class:`~actors.agents.assistant.Assistant` next to the session's hot state. A
turn carries a client-made turn id, so a call that fails because a shard died
is re-sent to the restarted shard and returns the same turn, never a duplicate.
"""

from __future__ import annotations

import uuid
from typing import Any

from actors.agents.backend import ProgressCallback

__all__ = ["TreeBackend"]


class TreeBackend:
    """:class:`~actors.agents.backend.ChatBackend` over the tree's actors."""

    def __init__(self, shards: int, *, workspace: str) -> None:
        from actors._ray import ActorRef
        from actors.store_actor import StoreClient

        self.shards = shards
        self.workspace = workspace
        self._shards = [ActorRef(f"sessions/shard-{i}", deadline_s=30.0) for i in range(shards)]
        self._store = StoreClient()

    @classmethod
    def connect(cls, address: str | None, *, workspace: str) -> TreeBackend | None:
        """The backend of the running tree, or None (no Ray cluster, or no tree in it)."""
        import ray

        from actors.app import ROOT, connect, tree_status
        from actors.sessions import shard_for  # noqa: F401 - fail early if missing

        try:
            connect(address, start_local=False)
        except (ConnectionError, RuntimeError, ValueError):
            return None
        from actors._ray import lookup

        if lookup(ROOT) is None:
            ray.shutdown()
            return None
        tree = tree_status() or {}
        sessions = next((c for c in tree.get("children", []) if c.get("path") == "sessions"), {})
        return cls(max(1, len(sessions.get("children", []))), workspace=workspace)

    def _shard(self, session_id: str) -> Any:
        from actors.sessions import shard_for

        return self._shards[shard_for(session_id, self.shards)]

    async def start_session(self, user_id: str | None = None) -> str:
        session_id = uuid.uuid4().hex
        return str(await self._shard(session_id).call("start_session", session_id, user_id))

    async def chat(
        self,
        session_id: str | None,
        message: str,
        *,
        user_id: str | None = None,
        on_event: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        session_id = session_id or uuid.uuid4().hex
        if on_event is not None:
            on_event({"event": "routing"})
        return dict(
            await self._shard(session_id).call(
                "handle_request", message, session_id, uuid.uuid4().hex, user_id, self.workspace
            )
        )

    async def workflow(
        self, message: str, session_id: str | None = None, *, builtin: str | None = None
    ) -> dict[str, Any]:
        session_id = session_id or uuid.uuid4().hex
        return dict(
            await self._shard(session_id).call(
                "execute_workflow", message, session_id, builtin, None, self.workspace,
                retry=False,
            )
        )  # fmt: skip

    async def sessions(self, user_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        from actors.agents.local import session_summary

        found = await self._store.list_sessions(user_id=user_id, limit=limit)
        return [await session_summary(self._store, s) for s in found]

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        from actors.agents.local import turn_summary

        return [turn_summary(t) for t in await self._store.turns(session_id)]

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        return dict(
            await self._shard(session_id).call(
                "rate_response", session_id, response_id, rating, feedback, retry=False
            )
        )

    async def close(self) -> None:
        """Nothing to close: the tree keeps running."""

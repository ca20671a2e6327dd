"""The terminal chat over a :class:`~serve.http.platform.Platform`: the running tree
(``elexirion up`` / ``serve``) as a :class:`~actors.agents.backend.ChatBackend`.

Turns go through :meth:`Platform.chat_events`, so tokens reach the terminal as the
model writes them, whichever platform serves them.
"""

from __future__ import annotations

import uuid
from typing import Any

from actors.agents.backend import ProgressCallback
from serve.http.platform import Platform

__all__ = ["PlatformBackend", "connect_tree"]


class PlatformBackend:
    """A :class:`~actors.agents.backend.ChatBackend` over any platform."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def start_session(self, user_id: str | None = None) -> str:
        del user_id
        return uuid.uuid4().hex  # the session is created by its first turn

    async def chat(
        self,
        session_id: str | None,
        message: str,
        *,
        user_id: str | None = None,
        on_event: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        async for event in self.platform.chat_events(
            message, session_id=session_id, user_id=user_id
        ):
            if event.get("event") == "response":
                return dict(event["response"])
            if on_event is not None:
                on_event(event)
        raise RuntimeError("the turn ended without an answer")

    async def sessions(self, user_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return await self.platform.sessions(user_id=user_id, limit=limit)

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        return list((await self.platform.session(session_id))["turns"])

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        return await self.platform.rate(session_id, response_id, rating, feedback)

    async def close(self) -> None:
        await self.platform.close()


def connect_tree(address: str | None, *, workspace: str) -> PlatformBackend | None:
    """The running tree as a chat backend, or None (no Ray cluster, or no tree in it)."""
    import ray

    from actors._ray import lookup
    from actors.app import ROOT, connect, tree_status
    from serve.http.tree_platform import TreePlatform

    try:
        connect(address, start_local=False)
    except (ConnectionError, RuntimeError, ValueError):
        return None
    if lookup(ROOT) is None:
        ray.shutdown()
        return None
    tree = tree_status() or {}
    sessions = next((c for c in tree.get("children", []) if c.get("path") == "sessions"), {})
    shards = max(1, len(sessions.get("children", [])))
    return PlatformBackend(TreePlatform(shards, workspace=workspace))

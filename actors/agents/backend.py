"""What the terminal chat talks to.

Implementations: :class:`actors.agents.local.LocalBackend` runs the whole agent
framework in this process over the local store (the embedded mode, no Ray);
:class:`serve.platform_backend.PlatformBackend` talks to a running tree
(``elexirion up``); :class:`serve.http_client.HttpBackend` to a remote server.
All return plain JSON-able dicts, the same shapes:

- a chat result is the :class:`~actors.agents.models.AgentResponse` as a dict plus
  ``session_id``;
- a session summary is ``{id, user_id, created_at, updated_at, turn_count,
  active_agent, title}`` (``title``: the first user message, shortened).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ChatBackend", "ProgressCallback"]

#: Receives progress events while a turn runs, e.g. ``{"event": "routed", "agent":
#: "analysis", "type": "analysis", "confidence": 0.93}``, ``{"event": "step",
#: "step": "review"}``, ``{"event": "token", "text": "..."}``. May never be called.
ProgressCallback = Callable[[dict[str, Any]], None]


class ChatBackend(Protocol):
    async def start_session(self, user_id: str | None = None) -> str:
        """A new session id (the session exists in the store on return)."""
        ...

    async def chat(
        self,
        session_id: str | None,
        message: str,
        *,
        user_id: str | None = None,
        on_event: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """One turn: the response dict plus ``session_id`` (a new one when None)."""
        ...

    async def sessions(self, user_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Session summaries, most recently updated first."""
        ...

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        """Turns of the session: ``{seq, role, content, meta, created_at}``."""
        ...

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        """Store a 1..10 rating of a response; returns ``{feedback_id, preferences}``.

        Raises ``LookupError`` for an unknown session or response, ``ValueError``
        for a rating outside 1..10.
        """
        ...

    async def close(self) -> None: ...

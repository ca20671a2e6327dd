"""What the HTTP app needs from the platform, as one async interface.

:class:`LocalPlatform` runs everything in this process (tests, `--embedded`);
:class:`serve.http.tree_platform.TreePlatform` talks to the running tree through
named actor handles. Routes depend on this protocol only, never on Ray.

Shapes (plain JSON-able dicts):

- a chat result: the agent response (see :class:`actors.agents.models.AgentResponse`)
  plus ``session_id``;
- chat events (:meth:`Platform.chat_events`): ``{"event": "routed", ...}``,
  ``{"event": "token", "text": str, "step": str}`` (zero or more), and last
  ``{"event": "response", "response": <chat result>}``; closing the iterator early
  cancels the turn (its run stops, no more tokens are paid for);
- a session summary: ``{id, user_id, created_at, updated_at, turn_count,
  active_agent, title}``; a session: the summary plus ``turns`` (``{seq, role,
  content, meta, created_at}``) and ``context``;
- a run: ``{run_id, pipeline, status, inputs, result, error, created_at, updated_at}``;
- metrics: see :meth:`Platform.metrics`.

Errors: ``LookupError`` → 404, ``ValueError`` (incl. ``AgentInputError``) → 422,
:class:`Saturated` → 503 with Retry-After.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

__all__ = ["Platform", "Saturated"]


class Saturated(RuntimeError):  # noqa: N818 - reads as the condition, like ActorMissing
    """The platform is at capacity: retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Platform(Protocol):
    # ----------------------------------------------------------------- chat
    async def chat(
        self,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        turn_id: str | None = None,
    ) -> dict[str, Any]:
        """One turn (creates the session when ``session_id`` is None)."""
        ...

    def chat_events(
        self,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        turn_id: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """One turn as events: tokens while the model writes, then the response."""
        ...

    async def workflow(
        self,
        message: str,
        *,
        session_id: str | None = None,
        builtin: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]: ...

    # ------------------------------------------------------------- sessions
    async def sessions(
        self, *, user_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    async def session(self, session_id: str) -> dict[str, Any]:
        """Raises ``LookupError`` for an unknown session."""
        ...

    async def session_owner(self, session_id: str) -> str | None:
        """Whose the session is (one store read); ``LookupError`` for an unknown one."""
        ...

    async def delete_session(self, session_id: str) -> None:
        """Raises ``LookupError`` for an unknown session."""
        ...

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]: ...

    # ------------------------------------------------------------ pipelines
    async def pipelines(self) -> list[dict[str, Any]]:
        """``{name, description, version, origin, inputs: {name: {type, required,
        default, description}}}`` of every library pipeline."""
        ...

    async def start_run(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Start a library pipeline in the background; returns the run (``running``).
        Raises ``LookupError`` for an unknown pipeline, ``ValueError`` for bad inputs."""
        ...

    async def run(self, run_id: str) -> dict[str, Any]:
        """Raises ``LookupError`` for an unknown run."""
        ...

    # ---------------------------------------------------------- operations
    async def metrics(self) -> dict[str, Any]:
        """``{window_s, turns: {count, per_minute, success_rate, latency_ms: {p50, p95,
        p99}}, by_agent: {name: {count, success_rate, p50_ms, cost_usd}}, by_pipeline:
        {...same...}, by_provider: {name: {calls, tokens_in, tokens_out, cost_usd}},
        breakers: {"provider/model": state}, tree: [rows of path, class, state,
        restarts, node, pid], recent_errors: [{at, where, code, message}]}``."""
        ...

    async def prometheus(self) -> str:
        """Metrics in the Prometheus text exposition format."""
        ...

    async def ready(self) -> dict[str, Any]:
        """``{"ready": bool, "checks": {"tree": ..., "store": ...}}``."""
        ...

    # ----------------------------------------------------------------- auth
    @property
    def store(self) -> Any:
        """The store (API keys live there): async methods of :class:`store.base.Store`."""
        ...

    async def close(self) -> None: ...

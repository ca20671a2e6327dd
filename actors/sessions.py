"""Sessions: conversations hashed to shards, hot in memory, written through to the store.

:class:`SessionShard` is plain Python (the Ray shell is in :mod:`actors.remote`).

Failure semantics: a turn is acknowledged only after the store has committed it
(``append_turn`` is durable on return), so a shard that dies loses nothing but its
cache; the re-created shard reloads a session from the store on first use. Every
turn carries an idempotency key (``turn_id``): a client that re-sends after a crash
gets the same turn back, never a duplicate. ``chat`` runs the pipeline under the
run id ``<turn_id>``, so a re-sent chat resumes or returns the same run.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from store.models import NewTurn

__all__ = ["HISTORY_TURNS", "SessionShard", "shard_for"]

#: Turns of history kept hot per session and given to the chat pipeline.
HISTORY_TURNS = 20


def shard_for(session_id: str, shards: int) -> int:
    """Stable shard index of a session (the same on every process and restart)."""
    digest = hashlib.blake2b(session_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


class Runs(Protocol):
    async def run(
        self, pipeline: Any, inputs: dict[str, Any], *, run_id: str
    ) -> dict[str, Any]: ...


@dataclass(slots=True)
class _Hot:
    turns: list[dict[str, Any]] = field(default_factory=list)
    loaded_at: float = field(default_factory=time.time)
    context: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    active_agent: str | None = None


class SessionShard:
    """One shard of sessions: an LRU of hot sessions over the store."""

    def __init__(
        self, shard_id: int, store: Any, runs: Runs | None, *, capacity: int = 10_000
    ) -> None:
        self.shard_id = shard_id
        self._store = store
        self._runs = runs
        self._capacity = capacity
        self._hot: OrderedDict[str, _Hot] = OrderedDict()
        self.evictions = 0
        self.loads = 0

    async def _session(self, session_id: str, user_id: str | None = None) -> _Hot:
        hot = self._hot.get(session_id)
        if hot is not None:
            self._hot.move_to_end(session_id)
            return hot
        session = await self._store.create_session(session_id, user_id=user_id)
        turns = await self._store.turns(session_id, last=HISTORY_TURNS)
        self.loads += 1
        hot = _Hot(
            [_turn_dict(t) for t in turns],
            context=dict(session.context),
            user_id=session.user_id,
            active_agent=session.active_agent,
        )
        self._hot[session_id] = hot
        while len(self._hot) > self._capacity:
            self._hot.popitem(last=False)
            self.evictions += 1
        return hot

    async def append(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        turn_id: str,
        meta: dict[str, Any] | None = None,
        user_id: str | None = None,
        context_update: dict[str, Any] | None = None,
        active_agent: str | None = None,
    ) -> dict[str, Any]:
        """Write one turn through to the store; returns it once it is durable.

        ``context_update`` is merged into the session's context (a ``None`` value
        removes its key) and stored in the same write as the turn.
        """
        (turn,) = await self.append_turns(
            session_id,
            [NewTurn(turn_id, role, content, meta or {})],
            user_id=user_id,
            context_update=context_update,
            active_agent=active_agent,
        )
        return turn

    async def append_turns(
        self,
        session_id: str,
        turns: list[NewTurn],
        *,
        user_id: str | None = None,
        context_update: dict[str, Any] | None = None,
        active_agent: str | None = None,
    ) -> list[dict[str, Any]]:
        """Write ``turns`` (a question and its answer, say) and the context update through
        to the store in one write; returns them once durable."""
        hot = await self._session(session_id, user_id)
        extra: dict[str, Any] = {}
        if context_update is not None:
            context = _merged(hot.context, context_update)
            extra = {"context": context, "active_agent": active_agent or hot.active_agent}
        stored = [_turn_dict(t) for t in await self._store.append_turns(session_id, turns, **extra)]
        if extra:
            hot.context, hot.active_agent = extra["context"], extra["active_agent"]
        known = {t["turn_id"] for t in hot.turns}
        hot.turns.extend(t for t in stored if t["turn_id"] not in known)
        del hot.turns[:-HISTORY_TURNS]
        return stored

    async def state(self, session_id: str, user_id: str | None = None) -> dict[str, Any]:
        """The session's hot state: ``context``, recent ``turns``, ``user_id``, ``active_agent``."""
        hot = await self._session(session_id, user_id)
        return {
            "context": dict(hot.context),
            "turns": list(hot.turns),
            "user_id": hot.user_id,
            "active_agent": hot.active_agent,
        }

    async def forget(self, session_id: str) -> None:
        """Drop the session from the cache (after it was deleted from the store)."""
        self._hot.pop(session_id, None)

    async def history(self, session_id: str, last: int | None = None) -> list[dict[str, Any]]:
        if last is not None and last > HISTORY_TURNS:
            return [_turn_dict(t) for t in await self._store.turns(session_id, last=last)]
        hot = await self._session(session_id)
        return list(hot.turns[-last:] if last else hot.turns)

    async def chat(
        self,
        session_id: str | None,
        message: str,
        *,
        turn_id: str | None = None,
        user_id: str | None = None,
        pipeline: str = "general_chat",
    ) -> dict[str, Any]:
        """One chat turn: user turn (durable) → pipeline run → assistant turn (durable)."""
        if self._runs is None:
            raise RuntimeError("this shard has no executor pool to run pipelines")
        started = time.perf_counter()
        session_id = session_id or uuid.uuid4().hex
        turn_id = turn_id or uuid.uuid4().hex
        hot = await self._session(session_id, user_id)
        prior = [t for t in hot.turns if not t["turn_id"].startswith(f"{turn_id}:")]
        user = await self.append(session_id, "user", message, turn_id=f"{turn_id}:user")
        history = "\n".join(f"{t['role']}: {t['content']}" for t in prior[-HISTORY_TURNS:])
        run = await self._runs.run(
            pipeline, {"message": message, "history": history}, run_id=f"turn-{turn_id}"
        )
        answer = _answer_text(run)
        assistant = await self.append(
            session_id,
            "assistant",
            answer,
            turn_id=f"{turn_id}:assistant",
            meta={"run_id": run.get("run_id"), "provider": _provider(run)},
        )
        return {
            "session_id": session_id,
            "turn_id": turn_id,
            "answer": answer,
            "user_seq": user["seq"],
            "assistant_seq": assistant["seq"],
            "run_id": run.get("run_id"),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    def stats(self) -> dict[str, Any]:
        return {
            "shard": self.shard_id,
            "hot_sessions": len(self._hot),
            "capacity": self._capacity,
            "evictions": self.evictions,
            "loads": self.loads,
        }


def _merged(context: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``context`` with ``update`` applied; a ``None`` value removes its key."""
    return {k: v for k, v in {**context, **update}.items() if v is not None}


def _turn_dict(turn: Any) -> dict[str, Any]:
    if isinstance(turn, dict):
        return turn
    return {
        "session_id": turn.session_id,
        "seq": turn.seq,
        "turn_id": turn.turn_id,
        "role": turn.role,
        "content": turn.content,
        "meta": dict(turn.meta),
        "created_at": turn.created_at,
    }


def _answer_text(run: dict[str, Any]) -> str:
    results = run.get("results", {})
    for result in reversed(list(results.values())):
        if isinstance(result, dict) and isinstance(result.get("text"), str):
            return str(result["text"])
    return ""


def _provider(run: dict[str, Any]) -> str | None:
    for result in run.get("results", {}).values():
        if isinstance(result, dict) and "provider" in result:
            return str(result["provider"])
    return None

"""Named conversations for ``claude_session`` steps and ``session_context`` parts.

A :class:`SessionStore` keeps each conversation's messages by name, so later
steps and later runs continue it (fix: pipeline_ex could not find sessions by
name). :class:`JsonFileSessionStore` persists one JSON file per session;
:class:`MemorySessionStore` is for tests. The actor runtime plugs in its own.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipelines._atomic import write_text_atomic
from pipelines.errors import ConfigError
from pipelines.providers.base import Message

__all__ = ["JsonFileSessionStore", "MemorySessionStore", "SessionStore", "render_history"]


@runtime_checkable
class SessionStore(Protocol):
    """Conversations by name. ``append`` is durable when it returns."""

    async def history(self, name: str) -> list[Message]: ...

    async def append(self, name: str, messages: Sequence[Message]) -> None: ...


def render_history(messages: Sequence[Message], *, last_n: int | None = None) -> str:
    """A conversation as readable text: ``user: ...`` / ``assistant: ...`` lines."""
    chosen = list(messages)[-last_n:] if last_n else list(messages)
    return "\n".join(f"{m.role}: {m.content}" for m in chosen)


class MemorySessionStore:
    """Conversations in a dict."""

    def __init__(self) -> None:
        self._sessions: dict[str, list[Message]] = {}

    async def history(self, name: str) -> list[Message]:
        return list(self._sessions.get(name, ()))

    async def append(self, name: str, messages: Sequence[Message]) -> None:
        self._sessions.setdefault(name, []).extend(messages)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class JsonFileSessionStore:
    """One JSON file per conversation under ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = asyncio.Lock()

    def _path(self, name: str) -> Path:
        return self.directory / f"{_SAFE.sub('_', name)}.json"

    async def history(self, name: str) -> list[Message]:
        return await asyncio.to_thread(self._read, name)

    async def append(self, name: str, messages: Sequence[Message]) -> None:
        async with self._lock:
            current = await asyncio.to_thread(self._read, name)
            await asyncio.to_thread(self._write, name, [*current, *messages])

    def _read(self, name: str) -> list[Message]:
        path = self._path(name)
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise ConfigError(f"session file {path} is unreadable: {exc}") from None
        return [Message(role=r["role"], content=r["content"]) for r in rows]

    def _write(self, name: str, messages: list[Message]) -> None:
        rows = [{"role": m.role, "content": m.content} for m in messages]
        write_text_atomic(self._path(name), json.dumps(rows))

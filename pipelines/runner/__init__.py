"""The pipeline runner: :class:`Runner` executes loaded pipelines."""

from __future__ import annotations

from pipelines.runner.checkpoint import (
    Checkpoint,
    Checkpointer,
    JsonFileCheckpointer,
    MemoryCheckpointer,
)
from pipelines.runner.engine import Runner, RunResult
from pipelines.runner.sessions import JsonFileSessionStore, MemorySessionStore, SessionStore

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "JsonFileCheckpointer",
    "JsonFileSessionStore",
    "MemoryCheckpointer",
    "MemorySessionStore",
    "RunResult",
    "Runner",
    "SessionStore",
]

"""Step checkpoints, so a rerun resumes where a failed run stopped.

The runner saves a :class:`Checkpoint` after every finished top-level step of a
pipeline with ``checkpoint_enabled``; on the next run with the same pipeline
(same ``fingerprint``) and inputs (same ``run_key``) it restores results and
variables and starts at ``step_index``. A successful run clears its checkpoint.

:class:`JsonFileCheckpointer` writes one JSON file per run key, atomically
(temporary file, fsync, rename), so a crash mid-write leaves the previous
checkpoint intact. The store-backed checkpointer implements the same protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pipelines._atomic import write_text_atomic
from pipelines.errors import ConfigError

__all__ = ["Checkpoint", "Checkpointer", "JsonFileCheckpointer", "MemoryCheckpointer", "run_key"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Progress of one run: the next step to run and everything produced so far."""

    run_key: str
    pipeline: str
    fingerprint: str
    step_index: int
    results: Mapping[str, Any]
    variables: Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Checkpointer(Protocol):
    """Where checkpoints live. Implementations must make ``save`` durable on return."""

    async def load(self, run_key: str) -> Checkpoint | None: ...

    async def save(self, checkpoint: Checkpoint) -> None: ...

    async def clear(self, run_key: str) -> None: ...


def run_key(pipeline: str, inputs: Mapping[str, Any]) -> str:
    """A stable key for "this pipeline with these inputs"."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]
    return f"{pipeline}-{digest}"


class MemoryCheckpointer:
    """Keeps checkpoints in a dict; for tests and embedded use."""

    def __init__(self) -> None:
        self.saved: dict[str, Checkpoint] = {}
        self.saves = 0

    async def load(self, run_key: str) -> Checkpoint | None:
        return self.saved.get(run_key)

    async def save(self, checkpoint: Checkpoint) -> None:
        self.saves += 1
        self.saved[checkpoint.run_key] = checkpoint

    async def clear(self, run_key: str) -> None:
        self.saved.pop(run_key, None)


_SAFE_KEY = re.compile(r"[^A-Za-z0-9_.-]")


class JsonFileCheckpointer:
    """One JSON file per run key under ``directory`` (created on first save)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{_SAFE_KEY.sub('_', key)}.json"

    async def load(self, run_key: str) -> Checkpoint | None:
        return await asyncio.to_thread(self._load, run_key)

    async def save(self, checkpoint: Checkpoint) -> None:
        await asyncio.to_thread(self._save, checkpoint)

    async def clear(self, run_key: str) -> None:
        await asyncio.to_thread(self._path(run_key).unlink, missing_ok=True)

    def _load(self, key: str) -> Checkpoint | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Checkpoint(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            # A corrupt checkpoint must not block the pipeline forever: say so.
            raise ConfigError(
                f"checkpoint {path} is unreadable ({exc}); delete it to start the run afresh"
            ) from None

    def _save(self, checkpoint: Checkpoint) -> None:
        payload = json.dumps(asdict(checkpoint), default=str)
        write_text_atomic(self._path(checkpoint.run_key), payload)

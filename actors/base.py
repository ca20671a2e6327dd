"""What every supervised actor has: ``ready``, ``monitor``, ``stop`` and ``info``.

Failure semantics (who runs what, and what happens when it raises):

- ``ready()`` is awaited by the parent supervisor right after creation; an
  exception there (or in ``__init__``) is a failed start.
- ``monitor()`` is awaited by the parent for the actor's whole life; it returns
  ``"shutdown"`` after ``stop()``, ``"escalated"`` when the actor's own supervisor
  gave up (the parent then treats it as an abnormal exit). If the process dies the
  parent's await fails instead.
- ``stop()`` runs :meth:`on_stop` (flush, stop own children); if that raises, the
  actor is still reported stopped and the parent kills it anyway.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

__all__ = ["Supervised"]


class Supervised:
    """Mixin for actor classes; call :meth:`_init_supervised` in ``__init__``."""

    _stopped: asyncio.Event
    _outcome: str
    _started_at: float
    path: str

    def _init_supervised(self, path: str) -> None:
        self.path = path
        self._stopped = asyncio.Event()
        self._outcome = "shutdown"
        self._started_at = time.time()

    async def ready(self) -> str:
        await self.on_ready()
        return "ready"

    async def on_ready(self) -> None:
        """Start-up work that needs the event loop (subclasses)."""

    async def monitor(self) -> str:
        await self._stopped.wait()
        return self._outcome

    async def stop(self) -> None:
        try:
            await self.on_stop()
        finally:
            self._stopped.set()

    async def on_stop(self) -> None:
        """Orderly shutdown work (subclasses)."""

    def _escalate(self) -> None:
        self._outcome = "escalated"
        self._stopped.set()

    async def info(self) -> dict[str, Any]:
        import ray

        return {
            "path": self.path,
            "class": type(self).__name__.removeprefix("_"),
            "pid": os.getpid(),
            "node": str(ray.get_runtime_context().get_node_id()),
            "started_at": self._started_at,
        }

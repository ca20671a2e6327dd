"""Choosing an executor for a run, and finishing the run when that executor dies.

Failure semantics: a run's caller waits on :meth:`ExecutorPool.run`. If the
executor dies mid-run (``RayActorError``), the pool picks another live executor
and asks it for the same run id: it continues from the last checkpoint in the
store (or records the run first, if the dead executor never had). Any run id is
resumed by at most one task at a time in this pool (concurrent callers share it).
A run that fails at run time (``StepFailed``) is not retried here: the error
reaches the caller.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray.exceptions import RayActorError

from pipelines.observability import get_logger

__all__ = ["ExecutorPool", "Slot"]

_log = get_logger("executors")


@dataclass(frozen=True, slots=True)
class Slot:
    """A live executor: its child id and handle."""

    id: str
    handle: Any


class ExecutorPool:
    """Least-loaded placement over the executors ``slots()`` returns."""

    def __init__(
        self, slots: Callable[[], list[Slot]], *, max_failovers: int = 10, wait_s: float = 60.0
    ) -> None:
        self._slots = slots
        self._in_flight: dict[str, int] = {}
        self._nodes: dict[str, str] = {}
        self._running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._max_failovers = max_failovers
        self._wait_s = wait_s
        self.failovers = 0
        self._turn = 0

    async def node_of(self, slot: Slot) -> str:
        key = f"{slot.id}:{id(slot.handle)}"
        if key not in self._nodes:
            self._nodes[key] = str((await slot.handle.info.remote())["node"])
        return self._nodes[key]

    async def _choose(self, node: str | None, dead: set[int]) -> Slot:
        """The least-loaded live executor (on ``node`` if given), never one whose handle
        already failed this run; waits (up to ``wait_s``) for a restarted one."""
        deadline = asyncio.get_running_loop().time() + self._wait_s
        while True:
            candidates = [s for s in self._slots() if id(s.handle) not in dead]
            if node is not None:
                candidates = [s for s in candidates if await self.node_of(s) == node]
            if candidates:
                # Among the least loaded, take turns: several callers place runs on
                # the same executors, and each sees only its own load.
                ordered = sorted(candidates, key=lambda s: s.id)
                shift = self._turn % len(ordered)
                self._turn += 1
                return min(
                    ordered[shift:] + ordered[:shift], key=lambda s: self._in_flight.get(s.id, 0)
                )
            if asyncio.get_running_loop().time() > deadline:
                where = f" on node {node}" if node else ""
                raise RuntimeError(f"no live executor{where} within {self._wait_s} s")
            await asyncio.sleep(0.05)

    async def run(
        self,
        pipeline: Any,
        inputs: dict[str, Any],
        *,
        run_id: str | None = None,
        node: str | None = None,
        stream_key: str | None = None,
    ) -> dict[str, Any]:
        """Run (or join, or resume) ``run_id`` and return its summary."""
        run_id = run_id or uuid.uuid4().hex
        task = self._running.get(run_id)
        if task is None:
            task = asyncio.create_task(
                self._drive(run_id, pipeline, inputs, node, stream_key), name=f"run {run_id}"
            )
            self._running[run_id] = task
            task.add_done_callback(lambda _: self._running.pop(run_id, None))
        return await asyncio.shield(task)

    async def _drive(
        self,
        run_id: str,
        pipeline: Any,
        inputs: dict[str, Any],
        node: str | None,
        stream_key: str | None = None,
    ) -> dict[str, Any]:
        # Handles, not ids: a restarted executor keeps its id under a new handle. After a
        # node is lost, its actors fail fast before the supervisor has seen them die.
        dead: set[int] = set()
        for _ in range(self._max_failovers + 1):
            slot = await self._choose(node, dead)
            self._in_flight[slot.id] = self._in_flight.get(slot.id, 0) + 1
            try:
                # run() is idempotent: it records the run if the dead executor had not,
                # resumes it from its checkpoint if it had, returns it if it finished.
                return dict(await slot.handle.run.remote(run_id, pipeline, inputs, stream_key))
            except RayActorError as exc:
                dead.add(id(slot.handle))
                self.failovers += 1
                _log.warning(
                    "executor_died_mid_run",
                    run_id=run_id,
                    executor=slot.id,
                    error=type(exc).__name__,
                )
            finally:
                self._in_flight[slot.id] -= 1
        raise RuntimeError(f"run {run_id} lost {self._max_failovers + 1} executors in a row")

    def loads(self) -> dict[str, int]:
        return {s.id: self._in_flight.get(s.id, 0) for s in self._slots()}

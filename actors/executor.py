"""Pipeline executors: run pipelines with a checkpoint per finished step in the store.

:class:`PipelineExecutor` is plain Python; many runs go on at once in one
executor (async). A run is recorded in the store (``runs``) before it starts,
with its pipeline YAML and inputs, so any executor can resume it.

Failure semantics: if an executor dies mid-run, its caller (the executor pool)
sees ``RayActorError`` and calls :meth:`resume` on another executor, which
reloads the run and its checkpoint from the store and continues at the first
unfinished step: finished steps are not re-executed (their provider calls are
not repeated). A step that was in flight when the executor died runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actors.streams import Push, TokenForwarder
from pipelines.errors import ConfigError, RunError
from pipelines.loader import LoadedPipeline, load_pipeline_text
from pipelines.providers.registry import ProviderRegistry
from pipelines.runner import MemorySessionStore, Runner
from pipelines.runner.streaming import streaming_to
from store.checkpointer import StoreCheckpointer
from store.models import RunRecord

__all__ = ["LIBRARY", "PipelineExecutor", "pipeline_yaml"]

LIBRARY = Path(__file__).resolve().parent.parent / "pipelines" / "library"


def pipeline_yaml(pipeline: str | dict[str, Any]) -> tuple[str, str]:
    """(source name, YAML text) of a library name or ``{"yaml": text, "source": name}``."""
    if isinstance(pipeline, dict):
        return str(pipeline.get("source", "<submitted>")), str(pipeline["yaml"])
    from pipelines.dna import find_pipeline, library_dirs

    path = find_pipeline(pipeline)
    if path is None:
        searched = ", ".join(str(d) for d in library_dirs())
        raise ConfigError(f"no pipeline {pipeline!r} in the library ({searched})")
    return str(path), path.read_text(encoding="utf-8")


class PipelineExecutor:
    """Runs pipelines; ``registry_factory`` builds the provider registry once."""

    def __init__(
        self,
        executor_id: str,
        store: Any,
        registry_factory: Callable[[], ProviderRegistry],
        *,
        node: str = "",
        streams: Push | None = None,
    ) -> None:
        """``streams`` pushes a run's tokens to the stream hub (see :mod:`actors.streams`)."""
        self.executor_id = executor_id
        self.node = node
        self._push = streams
        self._store = store
        self._registry_factory = registry_factory
        self._runner: Runner | None = None
        self.in_flight: set[str] = set()
        self.completed = 0

    def _get_runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(
                providers=self._registry_factory(),
                checkpointer=StoreCheckpointer(self._store),
                sessions=MemorySessionStore(),
            )
        return self._runner

    async def run(
        self,
        run_id: str,
        pipeline: str | dict[str, Any],
        inputs: dict[str, Any],
        stream_key: str | None = None,
    ) -> dict[str, Any]:
        """Record and run a pipeline; a run already finished returns its stored result.

        With ``stream_key``, LLM steps stream their tokens to the hub under that key,
        and a reader that cancels the stream cancels the run (``RunError`` code
        ``cancelled``; the run is recorded as failed with that code).
        """
        if stream_key is None or self._push is None:
            return await self._cancellable(run_id, pipeline, inputs)
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task under asyncio
        forwarder = TokenForwarder(stream_key, self._push, task.cancel)
        try:
            async with forwarder:
                with streaming_to(forwarder):
                    return await self._cancellable(run_id, pipeline, inputs)
        except asyncio.CancelledError:
            if not forwarder.cancelled:
                raise
            task.uncancel()
            raise RunError("run cancelled: the client went away", code="cancelled") from None

    async def _cancellable(
        self, run_id: str, pipeline: str | dict[str, Any], inputs: dict[str, Any]
    ) -> dict[str, Any]:
        """:meth:`_run`; a cancelled run is recorded as failed with code ``cancelled``."""
        try:
            return await self._run(run_id, pipeline, inputs)
        except asyncio.CancelledError:
            error = {"code": "cancelled", "message": "cancelled: the client went away"}
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.update_run(run_id, status="failed", error=error))
            raise

    async def _run(
        self, run_id: str, pipeline: str | dict[str, Any], inputs: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            source, text = pipeline_yaml(pipeline)
        except ConfigError:
            existing = await self._store.get_run(run_id)
            if existing is None:
                raise
            return await self._continue(existing)  # recorded with its YAML: still resumable
        now = time.time()
        record = RunRecord(
            run_id=run_id,
            pipeline=source,
            status="running",
            inputs=inputs,
            executor=self.executor_id,
            node=self.node,
            result=None,
            error=None,
            created_at=now,
            updated_at=now,
            pipeline_yaml=text,
        )
        if await self._store.create_run(record):  # one write, no read, for a new run
            return await self._execute(record, fresh=True)
        existing = await self._store.get_run(run_id)  # a repeat: continue or return it
        if existing is None:
            raise RunError(f"run {run_id}: the store reported it but cannot read it")
        return await self._continue(existing)

    async def resume(self, run_id: str) -> dict[str, Any]:
        """Continue ``run_id`` from its last checkpoint (or start it)."""
        record = await self._store.get_run(run_id)
        if record is None:
            raise ConfigError(f"no run {run_id!r} in the store")
        return await self._continue(record)

    async def _continue(self, record: RunRecord) -> dict[str, Any]:
        if record.status == "succeeded":
            return _summary(record)
        await self._store.update_run(
            record.run_id, status="running", executor=self.executor_id, node=self.node
        )
        return await self._execute(record)

    async def _execute(self, record: RunRecord, *, fresh: bool = False) -> dict[str, Any]:
        """Run a recorded run under its run id as checkpoint key; record the outcome."""
        run_id = record.run_id
        loaded = _loaded(record.pipeline_yaml or "", record.pipeline)
        self.in_flight.add(run_id)
        started = time.perf_counter()
        try:
            result = await self._get_runner().run(
                loaded, record.inputs, run_id=run_id, checkpoint_key=run_id, fresh=fresh
            )
        except (ConfigError, RunError) as exc:
            error = {"code": getattr(exc, "code", "config_error"), "message": str(exc)}
            await self._store.update_run(run_id, status="failed", error=error)
            raise
        finally:
            self.in_flight.discard(run_id)
        summary = {
            "results": result.results,
            "cost_usd": result.cost_usd,
            "usage": result.usage,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "resumed_at": result.resumed_at,
            "executor": self.executor_id,
            "node": self.node,
        }
        record = await self._store.update_run(run_id, status="succeeded", result=summary)
        self.completed += 1
        return _summary(record)

    def load(self) -> dict[str, Any]:
        return {
            "executor": self.executor_id,
            "node": self.node,
            "in_flight": len(self.in_flight),
            "completed": self.completed,
        }


@functools.lru_cache(maxsize=256)
def _loaded(text: str, source: str) -> LoadedPipeline:
    """The parsed pipeline; cached, since every chat turn runs one of a few library
    pipelines (parsing and validating the YAML was ~5% of a turn's CPU)."""
    return load_pipeline_text(text, source=source, base_dir=LIBRARY)


def _summary(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "pipeline": record.pipeline,
        "status": record.status,
        **(record.result or {}),
    }

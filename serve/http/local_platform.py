"""The platform in this process (``elexirion serve --embedded``, tests): the agents,
executor, sessions and stream hub of :class:`~actors.agents.local.LocalBackend`
over one store, no Ray. Same behaviour as the tree, minus its fault tolerance."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from actors.agents.local import LocalBackend, session_summary, turn_summary
from serve.http.turns import stream_turn

__all__ = ["LocalPlatform", "StoreViews", "library_pipelines", "run_dict", "start_recorded_run"]


class StoreViews:
    """What both platforms read straight from the store: sessions, runs, the library,
    the Prometheus view of :meth:`metrics`; and background runs they start."""

    _runs: set[asyncio.Task[Any]]

    @property
    def store(self) -> Any:
        raise NotImplementedError

    async def metrics(self) -> dict[str, Any]:
        raise NotImplementedError

    async def sessions(
        self, *, user_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        found = await self.store.list_sessions(user_id=user_id, limit=limit, offset=offset)
        return [await session_summary(self.store, s) for s in found]

    async def session_owner(self, session_id: str) -> str | None:
        found = await self.store.get_session(session_id)
        if found is None:
            raise LookupError(f"no session {session_id!r}")
        return found.user_id

    async def session(self, session_id: str) -> dict[str, Any]:
        found = await self.store.get_session(session_id)
        if found is None:
            raise LookupError(f"no session {session_id!r}")
        turns = await self.store.turns(session_id)
        return {
            **(await session_summary(self.store, found)),
            "context": dict(found.context),
            "turns": [turn_summary(t) for t in turns],
        }

    async def pipelines(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(library_pipelines)

    async def run(self, run_id: str) -> dict[str, Any]:
        record = await self.store.get_run(run_id)
        if record is None:
            raise LookupError(f"no run {run_id!r}")
        return run_dict(record)

    async def prometheus(self) -> str:
        from serve.http.prometheus import render

        return render(await self.metrics())

    async def _start_run(self, name: str, inputs: dict[str, Any], run: Any) -> dict[str, Any]:
        record, task = await start_recorded_run(self.store, name, inputs, run)
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return record

    async def _cancel_runs(self) -> None:
        for task in list(self._runs):
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)


class LocalPlatform(StoreViews):
    """:class:`~serve.http.platform.Platform` in-process; call :meth:`start` first."""

    def __init__(
        self,
        store_url: str,
        *,
        workspace: str,
        registry_factory: Any = None,
        agent_timeout_s: float = 30.0,
    ) -> None:
        self._backend = LocalBackend(
            store_url,
            workspace=workspace,
            registry_factory=registry_factory,
            agent_timeout_s=agent_timeout_s,
        )
        self._runs: set[asyncio.Task[Any]] = set()

    async def start(self) -> LocalPlatform:
        await self._backend.assistant()
        return self

    @property
    def store(self) -> Any:
        return self._backend.store

    async def chat(
        self,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        turn_id: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        assistant = await self._backend.assistant()
        return await assistant.handle_request(
            message, session_id, user_id=user_id, turn_id=turn_id, agent=agent
        )

    async def chat_events(
        self,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        turn_id: str | None = None,
        agent: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        assistant = await self._backend.assistant()
        key = turn_id or uuid.uuid4().hex
        turn = assistant.handle_request(
            message, session_id, user_id=user_id, turn_id=key, stream_key=key, agent=agent
        )
        hub = self._backend.streams
        async for event in stream_turn(
            key, turn, pull=hub.pull, cancel_stream=hub.cancel, drop_stream=hub.drop
        ):
            yield event

    async def workflow(
        self,
        message: str,
        *,
        session_id: str | None = None,
        builtin: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        assistant = await self._backend.assistant()
        return await assistant.execute_workflow(
            message, session_id, builtin=builtin, user_id=user_id
        )

    async def delete_session(self, session_id: str) -> None:
        if not await self.store.delete_session(session_id):
            raise LookupError(f"no session {session_id!r}")
        assistant = await self._backend.assistant()
        await assistant.sessions.forget(session_id)  # type: ignore[attr-defined]

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        return await self._backend.rate(session_id, response_id, rating, feedback)

    async def start_run(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        await self._backend.assistant()
        runs = self._backend.runs
        assert runs is not None  # noqa: S101 - set by assistant()

        async def run(run_id: str) -> Any:
            return await runs.run(name, inputs, run_id=run_id)

        return await self._start_run(name, inputs, run)

    async def metrics(self) -> dict[str, Any]:
        snapshot = self._backend.metrics.snapshot()
        snapshot["breakers"] = {}
        snapshot["tree"] = [
            {
                "path": "embedded",
                "class": "LocalPlatform",
                "state": "alive",
                "restarts": 0,
                "node": "local",
                "pid": None,
            }
        ]
        return snapshot

    async def ready(self) -> dict[str, Any]:
        try:
            store_ok = bool(await self.store.ping())
        except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
            return {"ready": False, "checks": {"store": f"down: {type(exc).__name__}"}}
        return {"ready": store_ok, "checks": {"store": "ok" if store_ok else "down"}}

    async def close(self) -> None:
        await self._cancel_runs()
        await self._backend.close()


def library_pipelines() -> list[dict[str, Any]]:
    """Every library pipeline with its inputs (built-in first, then the user's)."""
    from pipelines.dna import BUILTIN_LIBRARY, library_files
    from pipelines.loader import load_pipeline

    found = []
    for name, path in library_files().items():
        try:
            workflow = load_pipeline(path).workflow
        except Exception as exc:  # noqa: BLE001 - a broken user file must not hide the rest
            found.append({"name": name, "error": str(exc).splitlines()[0]})
            continue
        found.append(
            {
                "name": name,
                "description": workflow.description or "",
                "version": str(getattr(workflow, "version", "") or "1"),
                "library": "built-in" if path.parent == BUILTIN_LIBRARY else "user",
                "inputs": {
                    key: {
                        "type": spec.type,
                        "required": bool(spec.required),
                        "default": spec.default,
                        "description": spec.description or "",
                    }
                    for key, spec in (workflow.inputs or {}).items()
                },
            }
        )
    return found


async def start_recorded_run(
    store: Any, name: str, inputs: dict[str, Any], run: Any
) -> tuple[dict[str, Any], asyncio.Task[Any]]:
    """Check ``name`` and ``inputs``, record the run (so it is visible at once), and
    start ``run(run_id)`` in the background."""
    from actors.executor import pipeline_yaml
    from pipelines.errors import ConfigError
    from pipelines.loader import load_pipeline_text
    from store.models import RunRecord

    try:
        source, text = pipeline_yaml(name)
    except ConfigError as exc:
        raise LookupError(str(exc)) from None
    workflow = load_pipeline_text(text, source=source).workflow
    declared = workflow.inputs or {}
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise ValueError(f"inputs.{unknown[0]}: not an input of {name} ({', '.join(declared)})")
    missing = [k for k, spec in declared.items() if spec.required and k not in inputs]
    if missing:
        raise ValueError(f"inputs.{missing[0]}: required by {name}")
    run_id = uuid.uuid4().hex
    now = time.time()
    record = RunRecord(
        run_id=run_id,
        pipeline=source,
        status="pending",
        inputs=inputs,
        created_at=now,
        updated_at=now,
        pipeline_yaml=text,
    )
    await store.create_run(record)
    task = asyncio.create_task(_quietly(run(run_id)), name=f"run {run_id}")
    return run_dict(record), task


async def _quietly(run: Any) -> None:
    """A background run: its outcome is in the store; nobody awaits the exception."""
    with contextlib.suppress(Exception):  # recorded as failed by the executor
        await run


def run_dict(record: Any) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "pipeline": record.pipeline,
        "status": record.status,
        "inputs": dict(record.inputs),
        "result": record.result,
        "error": record.error,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }

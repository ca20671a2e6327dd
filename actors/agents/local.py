"""The agent framework wired in-process: the embedded mode of ``elexirion chat``.

Everything the tree does, in this process and over the same store: a local
executor runs the pipelines, a :class:`~actors.sessions.SessionShard` keeps the
sessions (written through, so a later process, or the tree, continues them),
the router and the agents are plain objects. No Ray is imported.

:func:`make_agents` and :func:`make_router` are also what the tree's actor
shells use, so both modes build the same objects.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any

from actors.agents.analysis import AnalysisAgent, RefactoringAgent
from actors.agents.assistant import Assistant
from actors.agents.base import AgentBase, Runs
from actors.agents.coding import CodeAgent, TestingAgent
from actors.agents.models import AgentRequest, AgentResponse
from actors.agents.planning import DeploymentAgent, GeneralAgent, PlanningAgent
from actors.metrics import MetricsBook, run_event
from actors.streams import StreamHub
from pipelines.observability import get_logger

__all__ = ["LocalAgents", "LocalBackend", "SuccessHistory", "make_agents", "make_router"]

_log = get_logger("agents")


def make_agents(runs: Runs) -> dict[str, AgentBase]:
    """One instance of every agent, keyed by name."""
    agents: list[AgentBase] = [
        AnalysisAgent(runs),
        RefactoringAgent(runs),
        TestingAgent(runs),
        PlanningAgent(runs),
        CodeAgent(runs),
        DeploymentAgent(runs),
        GeneralAgent(runs),
    ]
    return {agent.name: agent for agent in agents}


def make_router(runs: Runs, *, history: Any = None, record: Any = None) -> Any:
    """The router with the default classifier, asking ``route_request`` when unsure."""
    from actors.agents.router import Router, default_classifier

    async def ask_llm(text: str, context: dict[str, Any] | None) -> dict[str, Any] | None:
        topic = str((context or {}).get("last_analysis", {}).get("path", ""))
        result = await runs.run(
            "route_request",
            {"text": text, "context": f"last analysed: {topic}" if topic else ""},
            run_id=f"route-{uuid.uuid4().hex}",
        )
        answer = result.get("results", {}).get("classify", {})
        if answer.get("provider") == "offline":
            return None  # no model answered: keep the classifier's guess
        data = answer.get("data")
        return dict(data) if isinstance(data, dict) else None

    return Router(default_classifier(), llm=ask_llm, history=history, record=record)


class SuccessHistory:
    """Per (agent, type) success rates from this process's turns (local telemetry)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    async def record(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "agent":
            counts = self._counts[(str(event["agent"]), str(event["type"]))]
            counts[0] += event.get("outcome") == "ok"
            counts[1] += 1

    async def rates(self) -> dict[tuple[str, str], float]:
        return {key: ok / total for key, (ok, total) in self._counts.items() if total}


class LocalAgents:
    """The agent directory over in-process agents."""

    def __init__(self, agents: dict[str, AgentBase]) -> None:
        self.agents = agents

    async def handle(self, agent: str, request: AgentRequest) -> AgentResponse:
        if agent not in self.agents:
            raise LookupError(f"no agent {agent!r}; agents: {', '.join(self.agents)}")
        return await self.agents[agent].handle(request)


class _ExecutorRuns:
    """``Runs`` over a local :class:`~actors.executor.PipelineExecutor`; every run is
    recorded as a telemetry event (``record``)."""

    def __init__(self, executor: Any, record: Any = None) -> None:
        self._executor = executor
        self._record = record

    async def run(
        self,
        pipeline: Any,
        inputs: dict[str, Any],
        *,
        run_id: str,
        stream_key: str | None = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = dict(await self._executor.run(run_id, pipeline, inputs, stream_key))
        except Exception as exc:
            if self._record is not None:
                await self._record(run_event(pipeline, started, error=exc))
            raise
        if self._record is not None:
            await self._record(run_event(pipeline, started, result=result))
        return result


class LocalBackend:
    """:class:`~actors.agents.backend.ChatBackend` in this process, over ``store_url``."""

    def __init__(
        self,
        store_url: str,
        *,
        workspace: str,
        agent_timeout_s: float = 30.0,
        registry_factory: Any = None,
    ) -> None:
        """``registry_factory`` builds the provider registry (default: from settings)."""
        self.store_url = store_url
        self._registry_factory = registry_factory
        self.workspace = workspace
        self._agent_timeout_s = agent_timeout_s
        self._store: Any = None
        self._assistant: Assistant | None = None
        self.streams = StreamHub()
        self.runs: Runs | None = None
        self.metrics = MetricsBook()

    async def assistant(self) -> Assistant:
        if self._assistant is None:
            from actors.executor import PipelineExecutor
            from actors.sessions import SessionShard
            from pipelines.config import load_settings
            from pipelines.providers.setup import build_registry
            from store.factory import open_store

            self._store = await open_store(self.store_url)
            factory = self._registry_factory or (lambda: build_registry(load_settings()))
            history = SuccessHistory()

            async def record(event: dict[str, Any]) -> None:
                self.metrics.record(event)
                await history.record(event)

            executor = PipelineExecutor("local", self._store, factory, streams=self.streams.push)
            runs = self.runs = _ExecutorRuns(executor, record)
            self._assistant = Assistant(
                sessions=SessionShard(0, self._store, runs),
                router=make_router(runs, history=history.rates),
                agents=LocalAgents(make_agents(runs)),
                store=self._store,
                workspace=self.workspace,
                record=record,
                publish=self.streams.push,
                agent_timeout_s=self._agent_timeout_s,
            )
        return self._assistant

    async def start_session(self, user_id: str | None = None) -> str:
        return await (await self.assistant()).start_session(user_id)

    async def chat(
        self,
        session_id: str | None,
        message: str,
        *,
        user_id: str | None = None,
        on_event: Any = None,
    ) -> dict[str, Any]:
        return await (await self.assistant()).handle_request(
            message, session_id, user_id=user_id, on_event=on_event
        )

    async def workflow(
        self, message: str, session_id: str | None = None, *, builtin: str | None = None
    ) -> dict[str, Any]:
        return await (await self.assistant()).execute_workflow(message, session_id, builtin=builtin)

    async def sessions(self, user_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        await self.assistant()
        return [
            await session_summary(self._store, s)
            for s in await self._store.list_sessions(user_id=user_id, limit=limit)
        ]

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        await self.assistant()
        return [turn_summary(t) for t in await self._store.turns(session_id)]

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        return await (await self.assistant()).rate_response(
            session_id, response_id, rating, feedback
        )

    @property
    def store(self) -> Any:
        """The open store (after the first call that needed it)."""
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
        self._assistant = None


async def session_summary(store: Any, session: Any) -> dict[str, Any]:
    """The summary row of a session (``title``: its first user message, shortened)."""
    first = await store.turns(session.id, limit=1)
    title = first[0].content if first else ""
    return {
        "id": session.id,
        "user_id": session.user_id,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "turn_count": session.turn_count,
        "active_agent": session.active_agent,
        "title": title if len(title) <= 60 else title[:59] + "…",
    }


def turn_summary(turn: Any) -> dict[str, Any]:
    return {
        "seq": turn.seq,
        "role": turn.role,
        "content": turn.content,
        "meta": dict(turn.meta),
        "created_at": turn.created_at,
    }

"""The Ray shells: ``ray.remote`` applied to the plain classes, one kind per actor.

Every actor is async (``max_concurrency`` 1000, set at creation), uses no CPU
reservation (``num_cpus=0``: they wait on I/O), and is named after its tree path.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors._ray import ActorRef
from actors.base import Supervised
from actors.gateway import GatewayActorImpl
from actors.metrics import run_event
from actors.pool import ExecutorPool, Slot
from actors.store_actor import StoreActorImpl, StoreClient
from actors.supervisor_actor import ChildDef, SupervisorActorBase
from actors.telemetry import TelemetryActorImpl, record_event
from pipelines.observability import get_logger

__all__ = ["HISTORY_TTL_S", "SLOTS_TTL_S", "actor_class"]

_log = get_logger("executors")

#: How long a caller's list of live executors is trusted before it is fetched again.
SLOTS_TTL_S = 1.0
#: How long the router reuses telemetry's per-agent success rates.
HISTORY_TTL_S = 2.0


class _ExecutorsSupervisor(SupervisorActorBase):
    """Supervises the executors and places runs on them (the executor pool)."""

    def __init__(
        self, path: str, children: list[ChildDef], max_restarts: int, period_s: float
    ) -> None:
        super().__init__(path, children, "one_for_one", max_restarts, period_s)
        self._pool = ExecutorPool(self._live)

    def _live(self) -> list[Slot]:
        slots = []
        for info in self._supervisor.children():
            handle = self.child_handle(info.id)
            if info.state == "running" and handle is not None:
                slots.append(Slot(info.id, handle))
        return slots

    async def run(
        self,
        pipeline: Any,
        inputs: dict[str, Any],
        run_id: str | None = None,
        node: str | None = None,
        stream_key: str | None = None,
    ) -> dict[str, Any]:
        return await self._pool.run(
            pipeline, inputs, run_id=run_id, node=node, stream_key=stream_key
        )

    async def slots(self) -> list[tuple[str, Any]]:
        """The live executors as ``(id, handle)``: callers place their runs themselves."""
        return [(slot.id, slot.handle) for slot in self._live()]

    async def loads(self) -> dict[str, Any]:
        nodes = {s.id: await self._pool.node_of(s) for s in self._live()}
        return {"in_flight": self._pool.loads(), "nodes": nodes, "failovers": self._pool.failovers}


class _PlainSupervisor(SupervisorActorBase):
    """A supervisor actor with nothing but supervision (root, sessions)."""


class _Pool:
    """Runs placed from this process straight onto the executors: one actor hop per run,
    not two through the ``executors`` supervisor. The supervisor hands out its live
    children (:meth:`_ExecutorsSupervisor.slots`); the list is fetched again when it is
    older than :data:`SLOTS_TTL_S` and a run asks for it, so a restarted executor is
    picked up while a failed-over run waits for one (see :class:`ExecutorPool`)."""

    def __init__(self) -> None:
        self._ref = ActorRef("executors", deadline_s=20.0)
        self._slots: list[Slot] = []
        self._fetched_at = float("-inf")
        self._refresh: asyncio.Task[None] | None = None
        self._pool = ExecutorPool(self._live)

    def _live(self) -> list[Slot]:
        stale = time.monotonic() - self._fetched_at > SLOTS_TTL_S
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._fetch())
        return self._slots

    async def _fetch(self) -> None:
        try:
            pairs = await self._ref.call("slots")
        except Exception as exc:  # noqa: BLE001 - keep the last list; the next call retries
            _log.warning("executor_slots_unavailable", error=type(exc).__name__)
            return
        self._slots = [Slot(str(i), handle) for i, handle in pairs]
        self._fetched_at = time.monotonic()

    async def run(
        self,
        pipeline: Any,
        inputs: dict[str, Any],
        *,
        run_id: str,
        stream_key: str | None = None,
    ) -> dict[str, Any]:
        if not self._slots:
            await self._fetch()
        return await self._pool.run(pipeline, inputs, run_id=run_id, stream_key=stream_key)


class _RemoteAgents:
    """The agent directory over the ``agents/<name>`` actors (no retry: a dead agent
    means the fallback agent answers, see :meth:`Assistant.dispatch`)."""

    def __init__(self) -> None:
        self._refs: dict[str, ActorRef] = {}

    async def handle(self, agent: str, request: Any) -> Any:
        ref = self._refs.setdefault(agent, ActorRef(f"agents/{agent}", deadline_s=5.0))
        called_at = time.time()
        try:
            return await ref.call("handle", request, retry=False)
        except RayActorError:
            if not await _restarted_before(ref, called_at):
                raise  # it died while handling this request: the fallback agent answers
        # Our handle was to an actor that had already been replaced: send it again.
        return await ref.call("handle", request, retry=False)


async def _restarted_before(ref: ActorRef, moment: float) -> bool:
    """Whether the actor now under ``ref``'s name was started before ``moment`` (so a
    call that failed at ``moment`` went to its dead predecessor through a stale handle)."""
    try:
        info = await ref.call("info", retry=False)
    except Exception:  # noqa: BLE001 - not back yet: treat as a death during the call
        return False
    return float(info.get("started_at") or moment) < moment


class _RemoteRouter:
    def __init__(self) -> None:
        self._ref = ActorRef("agents/router", deadline_s=10.0)

    async def classify_request(self, text: str, context: dict[str, Any] | None = None) -> Any:
        return await self._ref.call("classify_request", text, context)


class _SessionShardActor(Supervised):
    def __init__(self, path: str, shard_id: int, capacity: int, workspace: str = ".") -> None:
        from actors.agents.assistant import Assistant
        from actors.sessions import SessionShard

        self._init_supervised(path)
        self._shard = SessionShard(shard_id, StoreClient(), _Pool(), capacity=capacity)
        self._assistant = Assistant(
            sessions=self._shard,
            router=_RemoteRouter(),
            agents=_RemoteAgents(),
            store=StoreClient(),
            workspace=workspace,
            record=record_event,
            publish=self._publish,
        )
        self._streams = ActorRef("streams", deadline_s=2.0)

    async def _publish(self, key: str, events: list[dict[str, Any]]) -> None:
        try:
            await self._streams.call("push", key, events, retry=False)
        except Exception:  # noqa: BLE001 - stream events are best effort; the answer is not
            return

    async def handle_request(  # noqa: PLR0917 - one actor call, its arguments
        self,
        message: str,
        session_id: str | None = None,
        turn_id: str | None = None,
        user_id: str | None = None,
        workspace: str | None = None,
        stream_key: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        """One agent turn (idempotent by ``turn_id``); tokens go to ``stream_key``."""
        return await self._assistant.handle_request(
            message,
            session_id,
            user_id=user_id,
            turn_id=turn_id,
            workspace=workspace,
            stream_key=stream_key,
            agent=agent,
        )

    async def execute_workflow(
        self,
        message: str,
        session_id: str | None = None,
        builtin: str | None = None,
        user_id: str | None = None,
        workspace: str | None = None,
    ) -> dict[str, Any]:
        return await self._assistant.execute_workflow(
            message, session_id, builtin=builtin, user_id=user_id, workspace=workspace
        )

    async def rate_response(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        return await self._assistant.rate_response(session_id, response_id, rating, feedback)

    async def forget(self, session_id: str) -> None:
        await self._shard.forget(session_id)

    async def start_session(self, session_id: str, user_id: str | None = None) -> str:
        await self._shard.state(session_id, user_id)
        return session_id

    async def chat(
        self,
        session_id: str | None,
        message: str,
        turn_id: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        result = await self._shard.chat(session_id, message, turn_id=turn_id, user_id=user_id)
        await record_event(
            {
                "kind": "turn",
                "outcome": "ok",
                "latency_ms": result["latency_ms"],
                "source": self.path,
            }
        )
        return result

    async def append(
        self, session_id: str, role: str, content: str, turn_id: str
    ) -> dict[str, Any]:
        return await self._shard.append(session_id, role, content, turn_id=turn_id)

    async def history(self, session_id: str, last: int | None = None) -> list[dict[str, Any]]:
        return await self._shard.history(session_id, last)

    async def stats(self) -> dict[str, Any]:
        return self._shard.stats()


class _ExecutorActor(Supervised):
    def __init__(self, path: str, executor_id: str, provider_env: dict[str, str]) -> None:
        from actors._ray import node_id
        from actors.executor import PipelineExecutor

        self._init_supervised(path)
        os.environ.update(provider_env)
        streams = ActorRef("streams", deadline_s=2.0)

        async def push(key: str, chunks: list[dict[str, str]]) -> bool:
            return bool(await streams.call("push", key, chunks, retry=False))

        self._executor = PipelineExecutor(
            executor_id, StoreClient(), _registry, node=node_id(), streams=push
        )

    async def run(
        self,
        run_id: str,
        pipeline: Any,
        inputs: dict[str, Any],
        stream_key: str | None = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = await self._executor.run(run_id, pipeline, inputs, stream_key)
        except Exception as exc:
            await record_event({**run_event(pipeline, started, error=exc), "source": self.path})
            raise
        await record_event({**run_event(pipeline, started, result=result), "source": self.path})
        return result

    async def resume(self, run_id: str) -> dict[str, Any]:
        return await self._executor.resume(run_id)

    async def load(self) -> dict[str, Any]:
        return self._executor.load()


def _registry() -> Any:
    from actors.gateway import RemoteAdmission
    from pipelines.config import load_settings
    from pipelines.providers.setup import build_registry, build_resilience

    settings = load_settings()
    resilience = build_resilience(settings)
    resilience.admit = RemoteAdmission()  # cluster-wide breakers and limits
    return build_registry(settings, resilience=resilience)


class _RouterActor(Supervised):
    """The router: the local classifier, the LLM when unsure, agent choice from telemetry."""

    def __init__(self, path: str) -> None:
        from actors.agents.local import make_router

        self._init_supervised(path)
        self._telemetry = ActorRef("telemetry", deadline_s=2.0)
        self._rates: dict[tuple[str, str], float] = {}
        self._history_at = float("-inf")
        self._router = make_router(_Pool(), history=self._history)

    async def _history(self) -> dict[tuple[str, str], float]:
        """Success rates per (agent, type) from telemetry, at most ``HISTORY_TTL_S`` old
        (an actor hop per turn for a number that moves slowly is not worth it)."""
        now = time.monotonic()
        if now - self._history_at < HISTORY_TTL_S:
            return self._rates
        try:
            rates = await self._telemetry.call("agent_success", retry=False)
        except Exception:  # noqa: BLE001 - no telemetry: the neutral prior applies
            return {}
        self._rates = {tuple(k.split("|", 1)): rate for k, rate in rates.items()}  # type: ignore[misc]
        self._history_at = now
        return self._rates

    async def classify_request(self, text: str, context: dict[str, Any] | None = None) -> Any:
        return await self._router.classify_request(text, context)


class _AgentActor(Supervised):
    """One specialised agent (its logic: :mod:`actors.agents`)."""

    def __init__(self, path: str, name: str) -> None:
        from actors.agents.local import make_agents

        self._init_supervised(path)
        self._agent = make_agents(_Pool())[name]

    async def handle(self, request: Any) -> Any:
        return await self._agent.handle(request)


class _StreamsActor(Supervised):
    """Token streams of turns in flight (see :mod:`actors.streams`)."""

    def __init__(self, path: str) -> None:
        from actors.streams import StreamHub

        self._init_supervised(path)
        self._hub = StreamHub()

    async def push(self, key: str, chunks: list[dict[str, Any]], done: bool = False) -> bool:
        return await self._hub.push(key, chunks, done)

    async def pull(self, key: str, cursor: int = 0, timeout_s: float = 10.0) -> dict[str, Any]:
        return await self._hub.pull(key, cursor, timeout_s)

    async def cancel(self, key: str) -> None:
        await self._hub.cancel(key)

    async def finish(self, key: str) -> None:
        await self._hub.finish(key)

    async def drop(self, key: str) -> None:
        await self._hub.drop(key)


class _HealthActor(Supervised):
    """Stub until the observability issue: reports which parts of the tree answer."""

    def __init__(self, path: str) -> None:
        self._init_supervised(path)

    async def check(self) -> dict[str, Any]:
        status: dict[str, Any] = {}
        try:
            status["store"] = bool(await StoreClient().ping())
        except Exception as exc:  # noqa: BLE001 - health reports failures, it does not raise them
            status["store"] = f"down: {type(exc).__name__}"
        return status


_KINDS: dict[str, Any] = {}


def actor_class(kind: str) -> Any:
    """The ``ray.remote`` class for an actor kind (created once per process)."""
    if not _KINDS:
        options = {"num_cpus": 0, "max_restarts": 0, "max_concurrency": 1000}
        plain = {
            "supervisor": _PlainSupervisor,
            "executors": _ExecutorsSupervisor,
            "store": StoreActorImpl,
            "telemetry": TelemetryActorImpl,
            "gateway": GatewayActorImpl,
            "shard": _SessionShardActor,
            "executor": _ExecutorActor,
            "health": _HealthActor,
            "router": _RouterActor,
            "streams": _StreamsActor,
            "agent": _AgentActor,
        }
        for name, cls in plain.items():
            _KINDS[name] = ray.remote(**options)(_named(cls))
    return _KINDS[kind]


_CLASS_NAMES = {
    "_PlainSupervisor": "Supervisor",
    "_ExecutorsSupervisor": "ExecutorsSupervisor",
    "StoreActorImpl": "StoreActor",
    "TelemetryActorImpl": "TelemetryActor",
    "GatewayActorImpl": "GatewayActor",
    "_SessionShardActor": "SessionShard",
    "_ExecutorActor": "PipelineExecutor",
    "_HealthActor": "HealthMonitor",
    "_RouterActor": "Router",
    "_StreamsActor": "StreamHub",
    "_AgentActor": "Agent",
}


def _named(cls: type) -> type:
    """A subclass with a domain name, so the Ray dashboard shows ``SessionShard``."""
    return type(_CLASS_NAMES[cls.__name__], (cls,), {"__module__": cls.__module__})

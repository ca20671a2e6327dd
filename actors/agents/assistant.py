"""A chat turn from end to end: :class:`Assistant`, the one entry point of the agents.

``handle_request(text, session_id)``: load the session (context, recent turns),
classify (router), pick the agent, dispatch with a timeout, fall back to the
``general`` agent if the chosen one crashes or times out, merge the context
update, then write the question, the answer and the context through in one store
write, and record telemetry. A request/response turn is stored whole or not at
all (one that fails leaves nothing; its caller got the error); a streamed turn
stores its question when the stream starts, as the client sees it accepted then.
The response id is the turn id, and every run id derives from it, so re-sending a
turn after a crash returns the stored answer (or resumes its run) instead of
paying twice.

It is plain Python over five collaborators: the session shard (state, durable
turns), a router, an agent directory, the store (feedback, preferences) and a
telemetry sink. The tree wires them to actors; :mod:`actors.agents.local`
wires them in-process.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from actors.agents.backend import ProgressCallback
from actors.agents.base import AgentInputError
from actors.agents.models import (
    AGENTS,
    REQUEST_TYPES,
    AgentRequest,
    AgentResponse,
    Classification,
    Plan,
)
from pipelines.errors import ConfigError
from pipelines.observability import get_logger
from store.models import NewTurn

__all__ = ["MAX_MESSAGE_CHARS", "AgentDirectory", "Assistant", "SessionNotOwned"]

_log = get_logger("agents")
MAX_MESSAGE_CHARS = 20_000
HISTORY_FOR_PROMPT = 6
FALLBACK_AGENT = "general"
_RUN_PLAN = re.compile(r"^\s*(run|execute|do|carry out)\s+(the|this)\s+plan\b", re.IGNORECASE)


class SessionNotOwned(LookupError):  # noqa: N818 - reads as the condition, like KeyError
    """The session belongs to another user: to that caller it does not exist."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (SessionNotOwned, (self.session_id,))


class AgentDirectory(Protocol):
    async def handle(self, agent: str, request: AgentRequest) -> AgentResponse: ...


class RouterLike(Protocol):
    async def classify_request(
        self, text: str, context: dict[str, Any] | None = None
    ) -> Classification: ...


class Sessions(Protocol):
    async def state(self, session_id: str, user_id: str | None = None) -> dict[str, Any]: ...

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
    ) -> dict[str, Any]: ...

    async def append_turns(
        self,
        session_id: str,
        turns: list[NewTurn],
        *,
        user_id: str | None = None,
        context_update: dict[str, Any] | None = None,
        active_agent: str | None = None,
    ) -> list[dict[str, Any]]: ...


Record = Callable[[dict[str, Any]], Awaitable[None]]
#: Sends events to a turn's stream (the stream hub's ``push``): ``(key, events)``.
Publish = Callable[[str, list[dict[str, Any]]], Awaitable[Any]]


async def _no_record(event: dict[str, Any]) -> None:
    del event


class Assistant:
    """Sessions + router + agents: ``handle_request``, workflows, feedback."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        router: RouterLike,
        agents: AgentDirectory,
        store: Any,
        workspace: str,
        record: Record = _no_record,
        publish: Publish | None = None,
        agent_timeout_s: float = 30.0,
        workflow_timeout_s: float = 600.0,
    ) -> None:
        self._sessions = sessions
        self._router = router
        self._agents = agents
        self._store = store
        self.workspace = workspace
        self._record = record
        self._publish = publish
        self.agent_timeout_s = agent_timeout_s
        self.workflow_timeout_s = workflow_timeout_s
        self._preferences: dict[str, tuple[float, dict[str, Any]]] = {}

    @property
    def sessions(self) -> Sessions:
        """The session state this assistant writes through (a shard)."""
        return self._sessions

    # ------------------------------------------------------------------ turns

    async def start_session(self, user_id: str | None = None) -> str:
        session_id = uuid.uuid4().hex
        await self._sessions.state(session_id, user_id)
        return session_id

    async def handle_request(
        self,
        text: str,
        session_id: str | None = None,
        *,
        user_id: str | None = None,
        turn_id: str | None = None,
        workspace: str | None = None,
        on_event: ProgressCallback | None = None,
        stream_key: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        """One chat turn; returns the response as a dict plus ``session_id``.

        ``stream_key`` streams the pipeline's tokens to the stream hub under that key;
        ``agent`` skips the router (a client that names its agent).
        """
        if agent is not None and agent not in REQUEST_TYPES:
            raise AgentInputError(f"agent: unknown agent {agent!r}; agents: {', '.join(AGENTS)}")
        text = _check_message(text)
        started = time.perf_counter()
        emit = on_event or (lambda event: None)
        session_id = session_id or uuid.uuid4().hex
        turn_id = turn_id or uuid.uuid4().hex
        state = await self._owned_state(session_id, user_id)
        done = _stored_answer(state["turns"], turn_id)
        if done is not None:
            return {**done, "session_id": session_id}
        user_id = user_id or state.get("user_id")
        context = state["context"]
        if stream_key is not None:
            # A streamed turn is accepted once its stream starts: its question is
            # stored now, so a client that leaves mid-answer finds it in the history.
            await self._sessions.append(
                session_id, "user", text, turn_id=f"{turn_id}:user", user_id=user_id
            )
        request = AgentRequest(
            text=text,
            session_id=session_id,
            user_id=user_id,
            context=context,
            history=_render_history(state["turns"]),
            workspace=workspace or self.workspace,
            preferences=await self._preferences_for(user_id, session_id),
            response_id=turn_id,
            stream_key=stream_key,
        )
        emit({"event": "routing"})
        if context.get("plan") and _RUN_PLAN.match(text):
            plan = Plan.model_validate(context["plan"])
            routing = Classification(
                type="planning", confidence=1.0, agent="planning", source="context"
            )
            emit({"event": "routed", "agent": "workflow", "type": "planning", "confidence": 1.0})
            response: AgentResponse = await self._workflows().run_plan(plan, request)
        else:
            routing = (
                Classification(type=agent, confidence=1.0, agent=agent, source="explicit")  # type: ignore[arg-type]
                if agent is not None
                else await self._router.classify_request(text, context)
            )
            routed = {
                **routing.model_dump(include={"agent", "type", "confidence"}),
                "response_id": turn_id,
                "session_id": session_id,
            }
            emit({"event": "routed", **routed})
            if stream_key is not None and self._publish is not None:
                await self._publish(stream_key, [{"event": "routed", **routed}])
            response = await self.dispatch(
                routing.agent, request.model_copy(update={"type": routing.type})
            )
        response = response.model_copy(
            update={
                "routing": routing,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        )
        question = None if stream_key is not None else text
        return await self._finish(session_id, turn_id, response, emit, question=question)

    async def _owned_state(self, session_id: str, user_id: str | None) -> dict[str, Any]:
        """The session's state (created for ``user_id`` when new); a session of another
        user raises :class:`SessionNotOwned`. ``user_id`` None (a local CLI) may
        continue any session of this store."""
        state = await self._sessions.state(session_id, user_id)
        if user_id is not None and state.get("user_id") != user_id:
            raise SessionNotOwned(session_id)
        return state

    async def _finish(
        self,
        session_id: str,
        turn_id: str,
        response: AgentResponse,
        emit: ProgressCallback,
        *,
        question: str | None = None,
    ) -> dict[str, Any]:
        """Store the answer with the context it leaves (and the ``question`` that led to
        it, when not stored yet): one write, so a turn is stored whole or not at all."""
        update = dict(response.context_update)
        update["runs"] = [
            *((await self._sessions.state(session_id))["context"].get("runs") or [])[-19:],
            {
                "response_id": response.response_id,
                "agent": response.agent,
                "pipeline": response.pipeline_used,
                "type": response.type,
            },
        ]
        body = response.model_dump(mode="json", exclude={"context_update"})
        meta = {"response": body, "agent": response.agent, "type": response.type}
        turns = [NewTurn(f"{turn_id}:user", "user", question)] if question is not None else []
        turns.append(NewTurn(f"{turn_id}:assistant", "assistant", response.summary, meta))
        await self._sessions.append_turns(
            session_id, turns, context_update=update, active_agent=response.agent
        )
        await self._record(
            {
                "kind": "agent",
                "agent": response.fallback_from or response.agent,
                "type": response.routing.type if response.routing else response.type,
                "outcome": "fallback" if response.fallback_from else "ok",
                "latency_ms": response.latency_ms,
                "cost_usd": response.cost_usd,
                "pipeline": response.pipeline_used,
            }
        )
        emit({"event": "done", "response_id": response.response_id})
        return {**body, "session_id": session_id}

    # --------------------------------------------------------------- dispatch

    async def dispatch(self, agent: str, request: AgentRequest) -> AgentResponse:
        """``agent`` handles ``request``; on a crash or a timeout the fallback agent does,
        and the response says so. A user error becomes an ``error`` answer naming it."""
        try:
            return await asyncio.wait_for(
                self._agents.handle(agent, request), timeout=self.agent_timeout_s
            )
        except ConfigError as exc:
            return _error_response(agent, request, str(exc))
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc  # a RayTaskError wraps the real one
            if agent == FALLBACK_AGENT or getattr(cause, "code", None) == "cancelled":
                raise  # a cancelled turn must not start paying again elsewhere
            reason = (
                f"timed out after {self.agent_timeout_s:g} s"
                if isinstance(exc, TimeoutError)
                else f"failed ({type(exc).__name__})"
            )
            _log.warning(
                "agent_fallback",
                agent=agent,
                reason=reason,
                error=f"{type(cause).__name__}: {str(cause)[:500]}",
            )
        fallback = await asyncio.wait_for(
            self._agents.handle(FALLBACK_AGENT, request), timeout=self.agent_timeout_s
        )
        return fallback.model_copy(
            update={
                "fallback_from": agent,
                "fallback_reason": f"the {agent} agent {reason}; the {FALLBACK_AGENT} "
                "agent answered instead",
                "summary": f"(The {agent} agent {reason}, so the general agent answered.) "
                + fallback.summary,
            }
        )

    # -------------------------------------------------------------- workflows

    def _workflows(self) -> Any:
        from actors.agents.workflow import WorkflowEngine

        async def plan(request: AgentRequest) -> Plan:
            response = await self._agents.handle("planning", request)
            return Plan.model_validate(response.details["plan"])

        return WorkflowEngine(self.dispatch, plan)

    async def execute_workflow(
        self,
        text: str,
        session_id: str | None = None,
        *,
        builtin: str | None = None,
        user_id: str | None = None,
        workspace: str | None = None,
    ) -> dict[str, Any]:
        """Plan ``text`` (or take the built-in workflow ``builtin``) and run the graph;
        recorded in the session as one turn whose answer is the workflow response."""
        text = _check_message(text)
        session_id = session_id or uuid.uuid4().hex
        turn_id = uuid.uuid4().hex
        state = await self._owned_state(session_id, user_id)
        await self._sessions.append(
            session_id, "user", text, turn_id=f"{turn_id}:user", user_id=user_id
        )
        request = AgentRequest(
            text=text,
            type="planning",
            session_id=session_id,
            user_id=user_id or state.get("user_id"),
            context=state["context"],
            workspace=workspace or self.workspace,
            response_id=turn_id,
        )
        engine = self._workflows()
        run = engine.run_builtin(builtin, request) if builtin else engine.execute_workflow(request)
        response = await asyncio.wait_for(run, timeout=self.workflow_timeout_s)
        return await self._finish(session_id, turn_id, response, lambda event: None)

    solve_complex_problem = execute_workflow

    # --------------------------------------------------------------- feedback

    async def rate_response(
        self,
        session_id: str,
        response_id: str,
        rating: int,
        feedback: str = "",
        *,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        from actors.agents.feedback import rate_response

        state = await self._sessions.state(session_id)
        user_id = user_id or state.get("user_id")
        result = await rate_response(
            self._store, session_id, response_id, rating, feedback, user_id=user_id
        )
        self._preferences.pop(_prefs_key(user_id, session_id), None)
        return dict(result)

    async def _preferences_for(self, user_id: str | None, session_id: str) -> dict[str, Any]:
        """Learned preferences (cached for a minute), with the prompt ``hint``."""
        from actors.agents.feedback import preferences_for

        key = _prefs_key(user_id, session_id)
        cached = self._preferences.get(key)
        if cached and time.monotonic() - cached[0] < 60.0:
            return cached[1]
        prefs = await preferences_for(self._store, user_id=user_id, session_id=session_id)
        value = {**_as_dict(prefs), "hint": prefs.prompt_hint()}
        self._preferences[key] = (time.monotonic(), value)
        return value


def _prefs_key(user_id: str | None, session_id: str) -> str:
    return f"user:{user_id}" if user_id else f"session:{session_id}"


def _as_dict(prefs: Any) -> dict[str, Any]:
    if hasattr(prefs, "model_dump"):
        return dict(prefs.model_dump())
    from dataclasses import asdict

    return asdict(prefs)


def _check_message(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise AgentInputError("message: must be a non-empty string")
    if "\x00" in text:
        raise AgentInputError("message: contains a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise AgentInputError("message: contains a lone surrogate (not valid UTF-8)")
    if len(text) > MAX_MESSAGE_CHARS:
        raise AgentInputError(
            f"message: {len(text)} characters, more than the {MAX_MESSAGE_CHARS} allowed"
        )
    return text.strip()


def _stored_answer(turns: list[dict[str, Any]], turn_id: str) -> dict[str, Any] | None:
    for turn in turns:
        if turn["turn_id"] == f"{turn_id}:assistant" and "response" in turn.get("meta", {}):
            return dict(turn["meta"]["response"])
    return None


def _render_history(turns: list[dict[str, Any]]) -> str:
    lines = []
    for turn in turns[-HISTORY_FOR_PROMPT:]:
        content = str(turn["content"])
        lines.append(f"{turn['role']}: {content[:500]}{'…' if len(content) > 500 else ''}")
    return "\n".join(lines)


def _error_response(agent: str, request: AgentRequest, message: str) -> AgentResponse:
    return AgentResponse(
        type="error",
        agent=agent,
        summary=f"I could not do that: {message}",
        confidence=1.0,
        response_id=request.response_id,
        details={"error": {"code": "invalid_request", "message": message}},
    )

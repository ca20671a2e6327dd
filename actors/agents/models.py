"""The agent framework's records: what goes into an agent and what comes out.

Pydantic models, because they are the boundary: they go over actor calls, into
the store (turn ``meta``), to the terminal and (later) to HTTP clients as JSON.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AGENTS",
    "REQUEST_TYPES",
    "AgentRequest",
    "AgentResponse",
    "Classification",
    "Finding",
    "Plan",
    "RequestType",
    "SubTask",
    "WorkflowResponse",
    "WorkflowStep",
    "new_id",
]

RequestType = Literal[
    "analysis", "refactoring", "testing", "planning", "code", "deployment", "general"
]
#: Request types, which are also the names of the agents that serve them.
REQUEST_TYPES: tuple[str, ...] = (
    "analysis",
    "refactoring",
    "testing",
    "planning",
    "code",
    "deployment",
    "general",
)
AGENTS = REQUEST_TYPES


def new_id() -> str:
    return uuid.uuid4().hex


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(_Frozen):
    """One finding; ``file``/``line`` are set whenever it comes from code."""

    message: str
    file: str | None = None
    line: int | None = None
    severity: Literal["error", "warning", "info"] = "info"
    rule: str | None = None

    def location(self) -> str:
        """``file:line``, ``file``, or ``""``."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""


class Classification(_Frozen):
    """What the router decided about a request."""

    type: RequestType
    confidence: float = Field(ge=0.0, le=1.0)
    agent: str
    pipeline: str | None = None
    #: ``classifier`` (local model), ``llm`` (asked below the threshold),
    #: ``context`` (a pending confirmation in the session), ``explicit`` (caller chose).
    source: str = "classifier"
    #: Per-type probabilities of the local classifier.
    scores: dict[str, float] = Field(default_factory=dict)


class AgentRequest(_Frozen):
    """A request as an agent sees it: the text, the routing, the session's context."""

    text: str
    type: RequestType = "general"
    session_id: str | None = None
    user_id: str | None = None
    #: Accumulated session context (``findings``, ``last_analysis``, ``pending_change``...).
    context: dict[str, Any] = Field(default_factory=dict)
    #: Recent history rendered as ``role: text`` lines.
    history: str = ""
    #: Absolute directory the agent may read (and, after confirmation, write).
    workspace: str = "."
    #: Learned per-user preferences (verbosity, focus_areas, language).
    preferences: dict[str, Any] = Field(default_factory=dict)
    response_id: str = Field(default_factory=new_id)
    #: Set when a workflow dispatches a subtask (depth of delegation).
    depth: int = 0
    #: Where the pipeline's tokens stream to (the turn id), when a client streams.
    stream_key: str | None = None


class AgentResponse(_Frozen):
    """The one answer shape of every agent."""

    type: str
    agent: str
    summary: str
    findings: list[Finding] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Follow-up messages the user can send as they are (buttons in a UI).
    next_actions: list[str] = Field(default_factory=list)
    pipeline_used: str | None = None
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    response_id: str = Field(default_factory=new_id)
    #: Set when a ``suggestion`` replaces the answer (e.g. "analyse first").
    suggestion: str | None = None
    #: The agent that should have answered, when the fallback agent did.
    fallback_from: str | None = None
    fallback_reason: str | None = None
    #: Agent-specific payload: diffs, the plan graph, generated tests, run output.
    details: dict[str, Any] = Field(default_factory=dict)
    routing: Classification | None = None
    #: Context updates the session should merge (e.g. new findings).
    context_update: dict[str, Any] = Field(default_factory=dict)


class SubTask(_Frozen):
    """One node of a plan: handled by one agent after its dependencies."""

    id: str
    description: str
    agent: str
    depends_on: list[str] = Field(default_factory=list)


class Plan(_Frozen):
    summary: str
    subtasks: list[SubTask]


class WorkflowStep(_Frozen):
    """How one subtask of a workflow ended."""

    id: str
    agent: str
    description: str
    status: Literal["succeeded", "failed", "skipped"]
    attempts: int = 0
    response: AgentResponse | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None


class WorkflowResponse(AgentResponse):
    """``type == "workflow_response"``: per-step results and a summary."""

    steps: list[WorkflowStep] = Field(default_factory=list)
    plan: Plan | None = None

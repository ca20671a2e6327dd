"""The planning, deployment and general agents.

``planning`` turns a complex request into a dependency graph of subtasks (the
model's plan, validated; offline, the request's clauses in order, each typed by
the router's classifier). ``deployment`` writes a rollout plan and checklist and
never deploys anything. ``general`` answers everything else and is the fallback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, ClassVar

from actors.agents.base import AgentBase
from actors.agents.models import REQUEST_TYPES, AgentRequest, AgentResponse, Plan, SubTask

__all__ = ["DeploymentAgent", "GeneralAgent", "PlanningAgent", "clause_plan"]

_CLAUSE_SPLIT = re.compile(
    r"(?:\s*;\s*|\.\s+|\s*\n\s*|,?\s+(?:and\s+)?then\s+|,?\s+after\s+that\s*,?\s*|"
    r",?\s+finally\s*,?\s*|\s*\d+[.)]\s+)",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(r"^\s*(?:[\w' ]{1,40}?):\s+(?=\S)")
MAX_CLAUSES = 12
_WORKFLOW_AGENTS = tuple(t for t in REQUEST_TYPES if t != "planning")


def clause_plan(text: str, classify: Callable[[str], str]) -> Plan:
    """A sequential plan from the request's clauses ("analyse X, then refactor, then test")."""
    body = _LEAD_IN.sub("", text, count=1)  # "break this down: ..." -> "..."
    clauses = [c.strip(" ,.") for c in _CLAUSE_SPLIT.split(body) if c and len(c.split()) >= 2]
    if len(clauses) <= 1:
        kind = classify(text)
        chain = {
            "analysis": ["analysis", "refactoring", "testing"],
            "refactoring": ["analysis", "refactoring", "testing"],
            "code": ["analysis", "code", "testing"],
            "testing": ["testing"],
            "deployment": ["testing", "deployment"],
        }.get(kind, ["analysis", "general"])
        clauses = [f"{agent}: {text}" for agent in chain]
        agents = chain
    else:
        if len(clauses) > MAX_CLAUSES:  # a plan is for people to read, not a parse of a dump
            clauses = [*clauses[: MAX_CLAUSES - 1], " ".join(clauses[MAX_CLAUSES - 1 :])[:2000]]
        agents = [classify(c) for c in clauses]
    subtasks = []
    for index, (clause, agent) in enumerate(zip(clauses, agents, strict=True), 1):
        subtasks.append(
            SubTask(
                id=f"s{index}",
                description=clause,
                agent=agent if agent in _WORKFLOW_AGENTS else "general",
                depends_on=[f"s{index - 1}"] if index > 1 else [],
            )
        )
    return Plan(summary=f"{len(subtasks)} step(s), in order", subtasks=subtasks)


def _model_plan(data: dict[str, Any]) -> Plan | None:
    """The model's plan when it is a valid graph of known agents, else None."""
    try:
        plan = Plan(
            summary=str(data.get("summary", "")),
            subtasks=[SubTask.model_validate(s) for s in data.get("subtasks") or []],
        )
    except (ValueError, TypeError):
        return None
    ids = {s.id for s in plan.subtasks}
    valid = (
        plan.subtasks
        and len(ids) == len(plan.subtasks)
        and all(s.agent in _WORKFLOW_AGENTS for s in plan.subtasks)
        and all(d in ids and d != s.id for s in plan.subtasks for d in s.depends_on)
    )
    return plan if valid else None


class PlanningAgent(AgentBase):
    name = "planning"
    capabilities: ClassVar[dict[str, float]] = {"planning": 1.0, "deployment": 0.3}

    def __init__(self, runs: Any, classify: Callable[[str], str] | None = None) -> None:
        super().__init__(runs)
        self._classify = classify or _default_classify

    async def make_plan(self, request: AgentRequest) -> tuple[Plan, Any]:
        """The plan for ``request`` and the run it came from."""
        outcome = await self.run_pipeline(
            "planning",
            {"request": request.text, "context": self.context_text(request)},
            request,
            tag="plan",
        )
        plan = None if outcome.offline else _model_plan(outcome.data("plan"))
        return plan or clause_plan(request.text, self._classify), outcome

    async def handle(self, request: AgentRequest) -> AgentResponse:
        started = time.perf_counter()
        plan, outcome = await self.make_plan(request)
        lines = [
            f"{s.id}. [{s.agent}] {s.description}"
            + (f" (after {', '.join(s.depends_on)})" if s.depends_on else "")
            for s in plan.subtasks
        ]
        source = "from the request's clauses (offline)" if outcome.offline else "by the model"
        return self.respond(
            request,
            started,
            type="planning",
            summary=f"Plan with {len(plan.subtasks)} subtask(s), {source}: " + "; ".join(lines),
            recommendations=lines,
            confidence=0.5 if outcome.offline else 0.8,
            next_actions=["run the plan"],
            pipeline_used=outcome.pipeline,
            cost_usd=outcome.cost_usd,
            details={"plan": plan.model_dump()},
            context_update={"plan": plan.model_dump(), "plan_request": request.text},
        )


def _default_classify(text: str) -> str:
    from actors.agents.router import default_classifier

    return str(default_classifier().predict(text)[0])


_TEMPLATE_STAGES = [
    {
        "name": "pre-flight",
        "actions": ["freeze the release branch", "run the full test suite and linters"],
        "checks": ["CI green on the release commit", "database migrations reviewed"],
        "rollback": "nothing deployed yet: stop here",
    },
    {
        "name": "canary (5%)",
        "actions": ["deploy to one instance / 5% of traffic"],
        "checks": ["error rate and p95 latency within 10% of baseline for 15 min"],
        "rollback": "route traffic back to the previous version",
    },
    {
        "name": "progressive rollout (25% → 100%)",
        "actions": ["raise traffic in steps, watching the same checks at each step"],
        "checks": ["no new alert", "business metrics steady"],
        "rollback": "redeploy the previous artefact; migrations must be backwards compatible",
    },
    {
        "name": "post-deploy",
        "actions": ["verify health endpoints", "announce the release"],
        "checks": ["dashboards reviewed after 1 h"],
        "rollback": "keep the previous artefact available for 7 days",
    },
]
_TEMPLATE_CHECKLIST = [
    "version tagged and changelog written",
    "secrets and configuration present in the target environment",
    "backups taken before migrations",
    "rollback tested on staging",
    "on-call engineer informed",
]


class DeploymentAgent(AgentBase):
    name = "deployment"
    capabilities: ClassVar[dict[str, float]] = {"deployment": 1.0, "planning": 0.3}

    async def handle(self, request: AgentRequest) -> AgentResponse:
        started = time.perf_counter()
        outcome = await self.run_pipeline(
            "deployment",
            {"request": request.text, "context": self.context_text(request)},
            request,
        )
        data = {} if outcome.offline else outcome.data("plan")
        stages = data.get("stages") or _TEMPLATE_STAGES
        checklist = [str(c) for c in data.get("checklist") or _TEMPLATE_CHECKLIST]
        source = "standard template (offline)" if outcome.offline else "the model"
        return self.respond(
            request,
            started,
            type="deployment",
            summary=(
                f"Rollout plan in {len(stages)} stage(s) from {source}; nothing was deployed. "
                + str(data.get("summary", ""))
            ).strip(),
            recommendations=[f"[ ] {c}" for c in checklist],
            confidence=0.5 if outcome.offline else 0.75,
            next_actions=["write tests before the release"],
            pipeline_used=outcome.pipeline,
            cost_usd=outcome.cost_usd,
            details={"stages": stages, "checklist": checklist, "risks": data.get("risks", [])},
        )


class GeneralAgent(AgentBase):
    name = "general"
    capabilities: ClassVar[dict[str, float]] = dict.fromkeys(REQUEST_TYPES, 0.3) | {"general": 1.0}

    async def handle(self, request: AgentRequest) -> AgentResponse:
        started = time.perf_counter()
        outcome = await self.run_pipeline(
            "general_chat",
            {"message": request.text, "history": self.context_text(request)},
            request,
        )
        return self.respond(
            request,
            started,
            summary=outcome.text("answer").strip() or "(no answer)",
            confidence=0.3 if outcome.offline else 0.7,
            pipeline_used=outcome.pipeline,
            cost_usd=outcome.cost_usd,
        )

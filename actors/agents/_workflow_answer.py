"""What a workflow sends to each agent and what it answers: requests, steps, the summary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from actors.agents.models import (
    AgentRequest,
    AgentResponse,
    Finding,
    Plan,
    RequestType,
    SubTask,
    WorkflowResponse,
    WorkflowStep,
)

__all__ = ["count_text", "counts", "flatten", "respond", "subrequest"]


def _finding_key(finding: Mapping[str, Any]) -> tuple[Any, ...]:
    return (finding.get("file"), finding.get("line"), finding.get("message"))


def subrequest(
    st: SubTask, plan: Plan, request: AgentRequest, before: list[WorkflowStep]
) -> AgentRequest:
    """The subtask's request: the original one, one level deeper, with its ancestors' output."""
    context = dict(request.context)
    inherited = context.get("findings")
    findings = [f for f in inherited if isinstance(f, dict)] if isinstance(inherited, list) else []
    seen = {_finding_key(f) for f in findings}
    earlier = context.get("previous")  # a sub-workflow keeps its parent's history
    previous = [p for p in earlier if isinstance(p, dict)] if isinstance(earlier, list) else []
    for step in before:  # all succeeded, or this subtask would be skipped
        if step.response is None:
            continue
        context.update(step.response.context_update)
        for finding in step.response.findings:
            data = finding.model_dump(mode="json")
            if _finding_key(data) not in seen:
                seen.add(_finding_key(data))
                findings.append(data)
        previous.append({"id": step.id, "agent": step.agent, "summary": step.response.summary})
    context["findings"] = findings
    context["previous"] = previous
    context["subtask"] = {"id": st.id, "description": st.description, "plan": plan.summary}
    return AgentRequest(
        text=f"{request.text}\n\nSubtask {st.id} ({st.agent}): {st.description}",
        type=cast(RequestType, st.agent),  # validated: the agents are the request types
        session_id=request.session_id,
        user_id=request.user_id,
        context=context,
        history=request.history,
        workspace=request.workspace,
        preferences=request.preferences,
        depth=request.depth + 1,
    )


def counts(steps: Iterable[WorkflowStep]) -> dict[str, int]:
    """Steps per status, every status present."""
    tally = {"succeeded": 0, "failed": 0, "skipped": 0}
    for step in steps:
        tally[step.status] += 1
    return tally


def count_text(tally: Mapping[str, int]) -> str:
    """``"2 succeeded, 1 failed, 0 skipped"``."""
    return ", ".join(f"{n} {status}" for status, n in tally.items())


def flatten(result: WorkflowResponse) -> AgentResponse:
    """A sub-workflow's answer as a plain response; its steps and plan go in ``details``."""
    fields = result.model_dump(exclude={"steps", "plan", "details"})
    nested = {
        "plan": result.plan.model_dump(mode="json") if result.plan else None,
        "steps": [step.model_dump(mode="json") for step in result.steps],
    }
    return AgentResponse.model_validate({**fields, "details": {**result.details, **nested}})


def _step_line(step: WorkflowStep) -> str:
    if step.status == "succeeded" and step.response is not None:
        detail = (step.response.summary.splitlines() or [""])[0]
    else:
        detail = step.error or ""
    return f"- {step.id} ({step.agent}) {step.status}: {detail[:200]}"


def respond(
    plan: Plan,
    request: AgentRequest,
    steps: list[WorkflowStep],
    *,
    cost_usd: float,
    latency_ms: float,
    cap: str | None,
    details: dict[str, Any],
) -> WorkflowResponse:
    """The workflow's answer; ``cap`` names the limit that stopped it, if one did."""
    tally = counts(steps)
    ok = [s.response for s in steps if s.status == "succeeded" and s.response is not None]
    answered = [s.response for s in steps if s.response is not None and s.response.type != "error"]
    findings: dict[tuple[Any, ...], Finding] = {}
    recommendations: dict[str, None] = {}
    context_update: dict[str, Any] = {}
    for response in answered:
        for finding in response.findings:
            findings.setdefault((finding.file, finding.line, finding.message), finding)
        recommendations.update(dict.fromkeys(response.recommendations))
    for response in ok:
        context_update.update(response.context_update)
    confidence = 0.0
    if ok:  # the mean of the successes, scaled by the success ratio
        confidence = sum(r.confidence for r in ok) / len(ok) * (len(ok) / len(steps))
    next_actions = [
        f"re-run failed step {s.id} ({s.agent}): {s.description}"
        for s in steps
        if s.status == "failed"
    ]
    if cap is not None and tally["succeeded"] < len(steps):
        next_actions.append(f"raise the workflow limits and run again ({cap})")
    head = f"Workflow {plan.summary!r}: {count_text(tally)} of {len(steps)} steps."
    return WorkflowResponse(
        type="workflow_response",
        agent="workflow",
        summary="\n".join([head, *map(_step_line, steps)]),
        findings=list(findings.values()),
        recommendations=list(recommendations),
        confidence=min(1.0, max(0.0, confidence)),
        next_actions=next_actions,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        response_id=request.response_id,
        details=details,
        context_update=context_update,
        steps=steps,
        plan=plan,
    )

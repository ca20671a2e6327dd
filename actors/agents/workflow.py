"""Multi-agent workflows: a plan's subtask graph, run agent by agent.

:meth:`WorkflowEngine.execute_workflow` (alias ``solve_complex_problem``) asks the
planning agent for a :class:`~actors.agents.models.Plan` and runs its graph: each
subtask goes to its agent once its dependencies succeeded, independent subtasks
run concurrently (at most ``parallelism`` agent calls at a time, across nested
sub-workflows too), and the answer is one ``workflow_response`` with a
:class:`~actors.agents.models.WorkflowStep` per subtask. :data:`BUILTIN_WORKFLOWS`
holds fixed graphs (``analysis_and_refactor``) run by :meth:`WorkflowEngine.run_builtin`.

A subtask for the ``planning`` agent is a delegation: the planner is asked for a
nested plan, which runs as a sub-workflow on the same budget. Built-in workflows
fix their graph, so there the planning step is an ordinary dispatch.

Failure semantics:

- An invalid graph (duplicate or unknown ids, a cycle, an unknown agent, too many
  subtasks) raises :class:`WorkflowError` before any agent is called. An invalid
  *nested* plan fails only its planning step.
- An attempt fails when ``dispatch`` (or the planner, for a delegation) raises an
  ``Exception`` or returns a response of type ``"error"``. It is retried up to
  ``retries`` more times; then the step is ``failed`` and its dependents are
  ``skipped`` ("dependency X failed"). Independent subtasks go on.
- Caps: every agent call (dispatch or nested planner call, retries included)
  counts one iteration. Before each call the budget is checked; once
  ``max_iterations`` calls were made or ``max_cost_usd`` was spent, no new call
  starts and the remaining steps are ``skipped`` naming the cap. Calls already
  running finish, so the cost may overshoot by what they spend.
- A planning subtask at ``depth >= max_depth`` is refused (``skipped``): no
  delegation loops.
- The top-level planner raising propagates to the caller. Cancelling a run
  cancels every running agent call (structured: one ``TaskGroup``); nothing is
  reported.

Exceptions: :class:`WorkflowError` only (see :mod:`actors.agents._workflow_plan`);
agent failures are reported in the steps, never raised.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from actors.agents._workflow_answer import count_text, counts, flatten, respond, subrequest
from actors.agents._workflow_plan import (
    BUILTIN_WORKFLOWS,
    BuiltinWorkflow,
    WorkflowError,
    WorkflowLimits,
    ancestors,
    validate_plan,
)
from actors.agents.models import (
    AgentRequest,
    AgentResponse,
    Plan,
    SubTask,
    WorkflowResponse,
    WorkflowStep,
)

__all__ = [
    "BUILTIN_WORKFLOWS",
    "BuiltinWorkflow",
    "Dispatch",
    "Planner",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowLimits",
    "validate_plan",
]

#: Calls one agent: ``(agent_name, request) -> response``; may raise.
Dispatch = Callable[[str, AgentRequest], Awaitable[AgentResponse]]
#: The planning agent: ``request -> plan``; may raise.
Planner = Callable[[AgentRequest], Awaitable[Plan]]


@dataclass(slots=True)
class _RunState:
    """Budget, call slots and mode shared by a run and all its sub-workflows.

    Checked and updated without an ``await`` in between, so asyncio needs no lock.
    """

    limits: WorkflowLimits
    semaphore: asyncio.Semaphore
    expand_planning: bool
    iterations: int = 0
    cost_usd: float = 0.0

    def exhausted(self) -> str | None:
        if self.iterations >= self.limits.max_iterations:
            return f"max_iterations {self.limits.max_iterations} reached"
        if self.cost_usd >= self.limits.max_cost_usd:
            return f"max_cost_usd {self.limits.max_cost_usd} reached (spent {self.cost_usd:.4g})"
        return None


@dataclass(slots=True)
class _Attempt:
    response: AgentResponse | None = None
    error: str | None = None
    retry: bool = False
    cost_usd: float = 0.0
    cap: str | None = None  # set when the budget refused the call
    started_at: float | None = None


class WorkflowEngine:
    """Runs plans over injected agents; plain Python, one instance serves many runs."""

    def __init__(
        self,
        dispatch: Dispatch,
        plan: Planner,
        *,
        limits: WorkflowLimits = WorkflowLimits(),  # noqa: B008 - frozen, safe to share
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dispatch = dispatch
        self._plan = plan
        self.limits = limits
        self._clock = clock

    async def execute_workflow(self, request: AgentRequest) -> WorkflowResponse:
        """Ask the planner for a plan, then :meth:`run_plan` it.

        Raises what the planner raises, and :class:`WorkflowError` for an invalid plan.
        """
        return await self.run_plan(await self._plan(request), request)

    solve_complex_problem = execute_workflow

    async def run_plan(
        self, plan: Plan, request: AgentRequest, *, expand_planning: bool = True
    ) -> WorkflowResponse:
        """Run ``plan``'s graph for ``request``; :class:`WorkflowError` if it is invalid.

        ``expand_planning=False`` dispatches planning subtasks like any other
        instead of running the planner's nested plan.
        """
        validate_plan(plan, max_subtasks=self.limits.max_subtasks)
        budget = _RunState(self.limits, asyncio.Semaphore(self.limits.parallelism), expand_planning)
        return await self._run(plan, request, budget)

    async def run_builtin(self, name: str, request: AgentRequest) -> WorkflowResponse:
        """Run the built-in workflow ``name``; :class:`WorkflowError` if there is none."""
        workflow = BUILTIN_WORKFLOWS.get(name)
        if workflow is None:
            raise WorkflowError(
                f"unknown workflow {name!r} (built-in: {sorted(BUILTIN_WORKFLOWS)})",
                "unknown_workflow",
            )
        return await self.run_plan(workflow.plan, request, expand_planning=False)

    # ------------------------------------------------------------ one graph

    async def _run(self, plan: Plan, request: AgentRequest, budget: _RunState) -> WorkflowResponse:
        started = self._clock()
        closure = ancestors(plan)
        steps: dict[str, WorkflowStep] = {}
        spent: dict[str, float] = {}
        done = {st.id: asyncio.Event() for st in plan.subtasks}

        async def node(st: SubTask) -> None:
            try:
                for dep in st.depends_on:
                    await done[dep].wait()
                sub = subrequest(st, plan, request, [steps[a] for a in closure[st.id]])
                steps[st.id], spent[st.id] = await self._step(st, sub, steps, budget)
            finally:
                done[st.id].set()  # dependents never wait forever, even on a bug

        async with asyncio.TaskGroup() as group:
            for st in plan.subtasks:
                group.create_task(node(st))
        ordered = [steps[st.id] for st in plan.subtasks]
        latency_ms = (self._clock() - started) * 1000
        details = {
            "iterations": budget.iterations,
            "total_cost_usd": budget.cost_usd,
            "depth": request.depth,
            "limits": dataclasses.asdict(self.limits),
        }
        return respond(
            plan,
            request,
            ordered,
            cost_usd=sum(spent.values()),
            latency_ms=latency_ms,
            cap=budget.exhausted(),
            details=details,
        )

    async def _step(
        self, st: SubTask, sub: AgentRequest, steps: Mapping[str, WorkflowStep], budget: _RunState
    ) -> tuple[WorkflowStep, float]:
        def end(status: Any, error: str | None, **fields: Any) -> WorkflowStep:
            return WorkflowStep(
                id=st.id,
                agent=st.agent,
                description=st.description,
                status=status,
                error=error,
                **fields,
            )

        blocked = next((d for d in st.depends_on if steps[d].status != "succeeded"), None)
        if blocked is not None:
            return end("skipped", f"dependency {blocked} {steps[blocked].status}"), 0.0
        if st.agent == "planning" and sub.depth >= self.limits.max_depth:
            reason = f"max_depth {self.limits.max_depth} reached: delegation to planning refused"
            return end("skipped", reason), 0.0
        attempts, cost, started_at = 0, 0.0, None
        last = _Attempt()
        while attempts <= self.limits.retries:
            outcome = await self._attempt(st, sub, budget)
            if outcome.cap is not None:
                if attempts == 0:
                    return end("skipped", outcome.cap), 0.0
                last.error = f"{last.error}; not retried: {outcome.cap}"
                break
            attempts += 1
            cost += outcome.cost_usd
            started_at = started_at if started_at is not None else outcome.started_at
            last = outcome
            if outcome.error is None or not outcome.retry:
                break
        status = "succeeded" if last.error is None else "failed"
        step = end(
            status,
            last.error,
            attempts=attempts,
            response=last.response,
            started_at=started_at,
            finished_at=self._clock(),
        )
        return step, cost

    async def _attempt(self, st: SubTask, sub: AgentRequest, budget: _RunState) -> _Attempt:
        delegate = budget.expand_planning and st.agent == "planning"
        async with budget.semaphore:
            cap = budget.exhausted()
            if cap is not None:
                return _Attempt(cap=cap)
            budget.iterations += 1
            started_at = self._clock()
            try:
                answer: AgentResponse | Plan = await (
                    self._plan(sub) if delegate else self._dispatch(st.agent, sub)
                )
            except Exception as exc:  # noqa: BLE001 - any agent failure is a failed attempt
                return _Attempt(
                    error=f"{type(exc).__name__}: {exc}", retry=True, started_at=started_at
                )
        if isinstance(answer, AgentResponse):
            budget.cost_usd += answer.cost_usd
            failed = answer.type == "error"
            return _Attempt(
                response=answer,
                error=(answer.summary or "the agent answered with an error") if failed else None,
                retry=failed,
                cost_usd=answer.cost_usd,
                started_at=started_at,
            )
        # Outside the semaphore: the sub-workflow's calls need the slots.
        nested = answer
        try:
            validate_plan(nested, max_subtasks=self.limits.max_subtasks)
        except WorkflowError as exc:
            return _Attempt(error=f"nested plan is invalid: {exc}", started_at=started_at)
        result = await self._run(nested, sub, budget)
        tally = counts(result.steps)
        incomplete = tally["failed"] + tally["skipped"]
        return _Attempt(
            response=flatten(result),
            # Not retried: the sub-workflow's own steps already had their retries.
            error=f"sub-workflow incomplete: {count_text(tally)}" if incomplete else None,
            cost_usd=result.cost_usd,
            started_at=started_at,
        )

"""Workflow graphs: limits, validation, dependency closure and the built-in graphs.

Exceptions::

    Exception
     └── WorkflowError   the plan or workflow name is invalid (user error, ``code``,
                         ``subtask``; never retryable); nothing ran
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from actors.agents.models import AGENTS, Plan, SubTask

__all__ = [
    "BUILTIN_WORKFLOWS",
    "BuiltinWorkflow",
    "WorkflowError",
    "WorkflowLimits",
    "ancestors",
    "validate_plan",
]


class WorkflowError(Exception):
    """A plan or workflow that cannot run; raised before any agent is called.

    ``code``: ``empty_plan``, ``too_many_subtasks``, ``duplicate_subtask``,
    ``unknown_agent``, ``unknown_dependency``, ``cycle`` or ``unknown_workflow``.
    ``subtask`` names the offending subtask when there is one.
    """

    retryable = False

    def __init__(self, message: str, code: str = "invalid_plan", subtask: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.subtask = subtask

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.code, self.subtask))


@dataclass(frozen=True, slots=True)
class WorkflowLimits:
    """Caps of one workflow run; raises ``ValueError`` for a limit that cannot work."""

    max_depth: int = 2
    max_subtasks: int = 12
    max_iterations: int = 30
    max_cost_usd: float = 1.0
    retries: int = 1
    parallelism: int = 4

    def __post_init__(self) -> None:
        if min(self.max_depth, self.max_subtasks, self.max_iterations, self.parallelism) < 1:
            raise ValueError(f"workflow limits must be >= 1: {self}")
        if self.retries < 0 or self.max_cost_usd < 0:
            raise ValueError(f"retries and max_cost_usd must be >= 0: {self}")


@dataclass(frozen=True, slots=True)
class BuiltinWorkflow:
    """A named, fixed graph: the planning step plans, it does not delegate."""

    name: str
    description: str
    plan: Plan


_ANALYSIS_AND_REFACTOR = BuiltinWorkflow(
    name="analysis_and_refactor",
    description="Analyse the code, plan the changes, make them, then test them.",
    plan=Plan(
        summary="analysis and refactor",
        subtasks=[
            SubTask(id="analyze", description="Analyse the code for problems", agent="analysis"),
            SubTask(
                id="plan",
                description="Plan the changes that fix the findings",
                agent="planning",
                depends_on=["analyze"],
            ),
            SubTask(
                id="code",
                description="Make the planned changes",
                agent="code",
                depends_on=["plan"],
            ),
            SubTask(
                id="test",
                description="Test the changed code",
                agent="testing",
                depends_on=["code"],
            ),
        ],
    ),
)
BUILTIN_WORKFLOWS: Mapping[str, BuiltinWorkflow] = MappingProxyType(
    {_ANALYSIS_AND_REFACTOR.name: _ANALYSIS_AND_REFACTOR}
)


def validate_plan(plan: Plan, *, max_subtasks: int, agents: Iterable[str] = AGENTS) -> None:
    """Raise :class:`WorkflowError` unless ``plan`` is a runnable graph."""
    if not plan.subtasks:
        raise WorkflowError(f"plan {plan.summary!r} has no subtasks", "empty_plan")
    if len(plan.subtasks) > max_subtasks:
        raise WorkflowError(
            f"plan has {len(plan.subtasks)} subtasks; the limit is {max_subtasks}",
            "too_many_subtasks",
        )
    known = set(agents)
    ids: set[str] = set()
    for st in plan.subtasks:
        if st.id in ids:
            raise WorkflowError(f"subtask id {st.id!r} is used twice", "duplicate_subtask", st.id)
        ids.add(st.id)
        if st.agent not in known:
            raise WorkflowError(
                f"subtask {st.id!r} names unknown agent {st.agent!r} (known: {sorted(known)})",
                "unknown_agent",
                st.id,
            )
    for st in plan.subtasks:
        for dep in st.depends_on:
            if dep not in ids:
                raise WorkflowError(
                    f"subtask {st.id!r} depends on unknown subtask {dep!r}",
                    "unknown_dependency",
                    st.id,
                )
    _check_acyclic(plan)


def _check_acyclic(plan: Plan) -> None:
    deps = {st.id: st.depends_on for st in plan.subtasks}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in deps[node]:
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                raise WorkflowError(
                    f"subtask {dep!r} depends on itself in a cycle: {' -> '.join(cycle)}",
                    "cycle",
                    dep,
                )
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for st in plan.subtasks:
        if st.id not in state:
            visit(st.id, [st.id])


def ancestors(plan: Plan) -> dict[str, list[str]]:
    """Every subtask's transitive dependencies, in plan order."""
    deps = {st.id: st.depends_on for st in plan.subtasks}
    order = {st.id: i for i, st in enumerate(plan.subtasks)}
    result: dict[str, list[str]] = {}
    for st in plan.subtasks:
        seen: set[str] = set()
        stack = list(st.depends_on)
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(deps[dep])
        result[st.id] = sorted(seen, key=order.__getitem__)
    return result

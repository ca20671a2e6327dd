"""WorkflowEngine without Ray: graph order, parallelism, caps, partial failure, validation."""

from __future__ import annotations

import asyncio
import itertools
import pickle
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from actors.agents.models import (
    AgentRequest,
    AgentResponse,
    Finding,
    Plan,
    SubTask,
    WorkflowResponse,
)
from actors.agents.workflow import (
    BUILTIN_WORKFLOWS,
    WorkflowEngine,
    WorkflowError,
    WorkflowLimits,
)

Behaviour = Callable[[AgentRequest], Awaitable[AgentResponse]]
#: Bounds every event wait: a broken engine fails the test fast instead of hanging.
WAIT_S = 2.0


def task(id: str, agent: str = "code", *deps: str) -> SubTask:
    return SubTask(id=id, description=f"do {id}", agent=agent, depends_on=list(deps))


def answer(agent: str, summary: str, **fields: Any) -> AgentResponse:
    return AgentResponse(type=f"{agent}_response", agent=agent, summary=summary, **fields)


class FakeAgents:
    """A fake ``dispatch``: per-subtask behaviours, a start/finish log, every request kept."""

    def __init__(self, behaviours: dict[str, Behaviour] | None = None) -> None:
        self.behaviours = behaviours or {}
        self.log: list[tuple[str, str]] = []
        self.requests: dict[str, list[AgentRequest]] = {}

    async def __call__(self, agent: str, request: AgentRequest) -> AgentResponse:
        sid = request.context["subtask"]["id"]
        self.log.append(("start", sid))
        self.requests.setdefault(sid, []).append(request)
        behaviour = self.behaviours.get(sid)
        if behaviour is None:
            response = answer(agent, f"{sid} done", confidence=0.8)
        else:
            response = await behaviour(request)
        self.log.append(("finish", sid))
        return response

    def before(self, first: tuple[str, str], then: tuple[str, str]) -> bool:
        return self.log.index(first) < self.log.index(then)

    @property
    def calls(self) -> int:
        return sum(len(r) for r in self.requests.values())


class FakePlanner:
    """A fake planning agent answering every request with ``plan``; counts its calls."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.requests: list[AgentRequest] = []

    async def __call__(self, request: AgentRequest) -> Plan:
        self.requests.append(request)
        return self.plan


def ticking() -> Callable[[], float]:
    counter: Iterator[int] = itertools.count()
    return lambda: float(next(counter))


def engine(agents: FakeAgents, planner: FakePlanner | None = None, **limits: Any) -> WorkflowEngine:
    planner = planner or FakePlanner(Plan(summary="unused", subtasks=[]))
    return WorkflowEngine(agents, planner, limits=WorkflowLimits(**limits), clock=ticking())


def request(**fields: Any) -> AgentRequest:
    return AgentRequest(text="improve the parser", session_id="s1", **fields)


def nested_errors(response: AgentResponse) -> list[str]:
    """Every step error of a workflow answer, sub-workflows included."""
    errors: list[str] = []

    def walk(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            errors.extend([step["error"]] if step["error"] else [])
            walk((step["response"] or {}).get("details", {}).get("steps", []))

    assert isinstance(response, WorkflowResponse)
    walk([step.model_dump(mode="json") for step in response.steps])
    return errors


async def test_dependencies_run_in_order_with_their_output() -> None:
    """A subtask starts after its dependencies finished and sees their findings and summaries."""
    found = Finding(message="long function", file="parser.py", line=3, rule="PLR0915")

    async def analyse(req: AgentRequest) -> AgentResponse:
        return answer("analysis", "a done", findings=[found], context_update={"last": "a"})

    agents = FakeAgents({"a": analyse})
    plan = Plan(
        summary="p",
        subtasks=[
            task("a", "analysis"),
            task("b", "code", "a"),
            task("c", "testing", "b"),
            task("d", "code", "a"),
        ],
    )
    result = await engine(agents).run_plan(plan, request(depth=0))

    assert [s.status for s in result.steps] == ["succeeded"] * 4
    assert agents.before(("finish", "a"), ("start", "b"))
    assert agents.before(("finish", "b"), ("start", "c"))
    assert agents.before(("finish", "a"), ("start", "d"))
    steps = {s.id: s for s in result.steps}
    assert steps["c"].started_at is not None and steps["b"].finished_at is not None
    assert steps["c"].started_at > steps["b"].finished_at
    c_request = agents.requests["c"][0]
    assert c_request.depth == 1 and c_request.type == "testing"
    assert c_request.text.startswith("improve the parser") and "do c" in c_request.text
    assert c_request.context["findings"] == [found.model_dump(mode="json")]
    assert [p["id"] for p in c_request.context["previous"]] == ["a", "b"]
    assert c_request.context["last"] == "a"


async def test_independent_subtasks_run_in_parallel() -> None:
    """Two independent subtasks each wait for the other to start: only concurrency finishes."""
    started = {"x": asyncio.Event(), "y": asyncio.Event()}

    async def rendezvous(req: AgentRequest) -> AgentResponse:
        me = req.context["subtask"]["id"]
        started[me].set()
        await asyncio.wait_for(started["y" if me == "x" else "x"].wait(), WAIT_S)
        return answer("code", f"{me} done")

    agents = FakeAgents({"x": rendezvous, "y": rendezvous})
    plan = Plan(summary="p", subtasks=[task("x"), task("y")])
    result = await engine(agents, retries=0).run_plan(plan, request())
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]


async def test_parallelism_limit_serialises_calls() -> None:
    """With parallelism 1 the second subtask cannot start while the first runs."""
    started = {"x": asyncio.Event(), "y": asyncio.Event()}

    async def rendezvous(req: AgentRequest) -> AgentResponse:
        me = req.context["subtask"]["id"]
        started[me].set()
        await asyncio.wait_for(started["y" if me == "x" else "x"].wait(), 0.05)
        return answer("code", f"{me} done")

    agents = FakeAgents({"x": rendezvous, "y": rendezvous})
    plan = Plan(summary="p", subtasks=[task("x"), task("y")])
    result = await engine(agents, retries=0, parallelism=1).run_plan(plan, request())
    assert [s.status for s in result.steps] == ["failed", "succeeded"]
    assert result.steps[0].error is not None and "TimeoutError" in result.steps[0].error


async def test_partial_failure_is_reported_and_independent_work_goes_on() -> None:
    """A failing branch is retried then failed, its dependent skipped, the other branch done."""

    async def broken(req: AgentRequest) -> AgentResponse:
        raise RuntimeError("agent crashed")

    agents = FakeAgents({"a": broken})
    plan = Plan(summary="p", subtasks=[task("a"), task("b", "code", "a"), task("c", "testing")])
    result = await engine(agents, retries=1).run_plan(plan, request())

    a, b, c = result.steps
    assert (a.status, a.attempts) == ("failed", 2)
    assert a.error == "RuntimeError: agent crashed"
    assert (b.status, b.error, b.attempts) == ("skipped", "dependency a failed", 0)
    assert (c.status, c.attempts) == ("succeeded", 1)
    assert "b" not in agents.requests
    assert "1 succeeded, 1 failed, 1 skipped" in result.summary
    assert result.confidence == pytest.approx(0.8 / 3)
    assert result.details["iterations"] == 3
    assert any(action.startswith("re-run failed step a") for action in result.next_actions)


async def test_retry_is_not_attempted_past_a_cap() -> None:
    """A failed attempt is not retried once the iteration cap is reached; the step fails."""

    async def broken(req: AgentRequest) -> AgentResponse:
        raise RuntimeError("down")

    plan = Plan(summary="p", subtasks=[task("a")])
    result = await engine(FakeAgents({"a": broken}), max_iterations=1).run_plan(plan, request())
    step = result.steps[0]
    assert (step.status, step.attempts) == ("failed", 1)
    assert step.error == "RuntimeError: down; not retried: max_iterations 1 reached"
    assert step.started_at is not None


async def test_error_response_is_retried_then_succeeds() -> None:
    """A response of type "error" is a failed attempt; the retry's answer is kept."""
    answers = iter(
        [
            AgentResponse(type="error", agent="code", summary="tool failed", cost_usd=0.1),
            answer("code", "fixed", cost_usd=0.2),
        ]
    )

    async def flaky(req: AgentRequest) -> AgentResponse:
        return next(answers)

    result = await engine(FakeAgents({"a": flaky})).run_plan(
        Plan(summary="p", subtasks=[task("a")]), request()
    )
    step = result.steps[0]
    assert (step.status, step.attempts, step.error) == ("succeeded", 2, None)
    assert step.response is not None and step.response.summary == "fixed"
    assert result.cost_usd == pytest.approx(0.3)


async def test_planner_that_always_delegates_is_refused_at_max_depth() -> None:
    """A plan that always contains a planning subtask stops at max_depth: no delegation loop."""
    planner = FakePlanner(Plan(summary="loop", subtasks=[task("deeper", "planning")]))
    result = await engine(FakeAgents(), planner, max_depth=2).solve_complex_problem(request())

    assert [r.depth for r in planner.requests] == [0, 1]
    assert result.steps[0].status == "failed"
    assert any("max_depth 2 reached" in e for e in nested_errors(result))


async def test_iteration_cap_stops_a_looping_planner() -> None:
    """Planner and dispatch calls, nested ones included, stop at max_iterations."""
    planner = FakePlanner(Plan(summary="loop", subtasks=[task("deeper", "planning"), task("work")]))
    agents = FakeAgents()
    result = await engine(agents, planner, max_depth=50, max_iterations=5).execute_workflow(
        request()
    )

    # The top-level plan is not a subtask; every later call is one iteration.
    assert len(planner.requests) - 1 + agents.calls == 5
    assert result.details["iterations"] == 5
    assert any("max_iterations 5 reached" in e for e in nested_errors(result))


async def test_cost_cap_stops_launching_new_subtasks() -> None:
    """Once the responses cost max_cost_usd, the remaining subtasks are skipped naming the cap."""

    async def pricey(req: AgentRequest) -> AgentResponse:
        return answer("code", "done", cost_usd=0.4)

    ids = ["a", "b", "c", "d", "e"]
    agents = FakeAgents(dict.fromkeys(ids, pricey))
    plan = Plan(summary="p", subtasks=[task(i) for i in ids])
    result = await engine(agents, parallelism=1, max_cost_usd=1.0).run_plan(plan, request())

    assert [s.status for s in result.steps] == ["succeeded"] * 3 + ["skipped"] * 2
    assert all("max_cost_usd 1.0 reached" in (s.error or "") for s in result.steps[3:])
    assert result.cost_usd == pytest.approx(1.2)
    assert any("raise the workflow limits" in a for a in result.next_actions)


@pytest.mark.parametrize(
    ("subtasks", "code", "subtask"),
    [
        ([task("a"), task("a")], "duplicate_subtask", "a"),
        ([task("a"), task("b", "code", "ghost")], "unknown_dependency", "b"),
        ([task("a", "code", "b"), task("b", "code", "a")], "cycle", "a"),
        ([task("a", "code", "a")], "cycle", "a"),
        ([task("a", "wizard")], "unknown_agent", "a"),
        ([task(str(i)) for i in range(13)], "too_many_subtasks", None),
        ([], "empty_plan", None),
    ],
)
async def test_invalid_graph_raises_before_anything_runs(
    subtasks: list[SubTask], code: str, subtask: str | None
) -> None:
    """Duplicate ids, unknown dependencies, cycles and unknown agents raise WorkflowError first."""
    agents = FakeAgents()
    planner = FakePlanner(Plan(summary="bad", subtasks=subtasks))
    with pytest.raises(WorkflowError) as caught:
        await engine(agents, planner).execute_workflow(request())
    assert (caught.value.code, caught.value.subtask) == (code, subtask)
    if subtask is not None:
        assert repr(subtask) in str(caught.value)
    assert agents.calls == 0


async def test_invalid_nested_plan_fails_only_its_step() -> None:
    """A delegated plan with a cycle fails the planning step; the rest of the graph runs."""
    nested = Plan(summary="bad", subtasks=[task("n", "code", "n")])
    planner = FakePlanner(nested)
    plan = Plan(summary="p", subtasks=[task("plan", "planning"), task("other")])
    result = await engine(FakeAgents(), planner).run_plan(plan, request())
    assert [s.status for s in result.steps] == ["failed", "succeeded"]
    assert result.steps[0].error is not None and "cycle" in result.steps[0].error


async def test_builtin_analysis_and_refactor_runs_analysis_plan_code_test() -> None:
    """The built-in graph dispatches analysis, planning, code, testing in that order."""
    found = Finding(message="unused import", file="app.py", line=1, rule="F401")

    async def analyse(req: AgentRequest) -> AgentResponse:
        return answer("analysis", "one finding", findings=[found], recommendations=["fix"])

    agents = FakeAgents({"analyze": analyse})
    planner = FakePlanner(Plan(summary="never", subtasks=[]))
    result = await engine(agents, planner).run_builtin("analysis_and_refactor", request())

    assert [e for e in agents.log if e[0] == "start"] == [
        ("start", s) for s in ("analyze", "plan", "code", "test")
    ]
    assert [(s.id, s.agent, s.status) for s in result.steps] == [
        ("analyze", "analysis", "succeeded"),
        ("plan", "planning", "succeeded"),
        ("code", "code", "succeeded"),
        ("test", "testing", "succeeded"),
    ]
    assert planner.requests == []  # a fixed graph: the planning step does not delegate
    assert agents.requests["code"][0].context["findings"][0]["file"] == "app.py"
    assert result.plan == BUILTIN_WORKFLOWS["analysis_and_refactor"].plan
    assert result.findings == [found] and result.recommendations == ["fix"]


async def test_unknown_builtin_workflow_raises() -> None:
    """run_builtin with an unknown name raises WorkflowError (unknown_workflow)."""
    with pytest.raises(WorkflowError, match="unknown workflow 'nope'") as caught:
        await engine(FakeAgents()).run_builtin("nope", request())
    assert caught.value.code == "unknown_workflow"


async def test_response_merges_step_results() -> None:
    """Findings are deduplicated, recommendations merged, costs summed, steps in plan order."""
    same = Finding(message="bare except", file="x.py", line=7)

    async def one(req: AgentRequest) -> AgentResponse:
        return answer("analysis", "one", findings=[same], recommendations=["r1"], cost_usd=0.1)

    async def two(req: AgentRequest) -> AgentResponse:
        return answer("testing", "two", findings=[same], recommendations=["r1", "r2"], cost_usd=0.2)

    agents = FakeAgents({"one": one, "two": two})
    plan = Plan(summary="merge", subtasks=[task("two", "testing"), task("one", "analysis")])
    req = request()
    result = await engine(agents).run_plan(plan, req)

    assert result.type == "workflow_response" and result.agent == "workflow"
    assert result.response_id == req.response_id
    assert [s.id for s in result.steps] == ["two", "one"]
    assert result.findings == [same]
    assert result.recommendations == ["r1", "r2"]
    assert result.cost_usd == pytest.approx(0.3)
    assert result.latency_ms > 0
    assert result.plan == plan
    assert result.summary.splitlines()[1:] == [
        "- two (testing) succeeded: two",
        "- one (analysis) succeeded: one",
    ]
    WorkflowResponse.model_validate_json(result.model_dump_json())  # JSON round trip


def test_workflow_error_pickles() -> None:
    """WorkflowError keeps its code and subtask across a pickle round trip."""
    error = WorkflowError("subtask 'a' is in a cycle", "cycle", "a")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.code, copy.subtask) == (
        WorkflowError,
        str(error),
        "cycle",
        "a",
    )


def test_limits_reject_unusable_values() -> None:
    """A zero parallelism or negative retry count is refused at construction."""
    with pytest.raises(ValueError, match="must be >= 1"):
        WorkflowLimits(parallelism=0)
    with pytest.raises(ValueError, match="must be >= 0"):
        WorkflowLimits(retries=-1)

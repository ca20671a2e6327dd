"""Chat turns through the whole agent framework in-process (no Ray): the week-1 demo,
context carried between turns, fallback on a crash or a timeout, idempotent re-sends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actors.agents.local import LocalBackend
from actors.agents.models import AgentRequest, AgentResponse
from pipelines.providers.registry import ProviderRegistry
from pipelines.testing import FakeProvider
from tests.unit.actors.agents.conftest import fake_backend, json_responder

PLANTED = {
    ("examples/sample_project/app.py", 4),
    ("examples/sample_project/app.py", 28),
    ("examples/sample_project/app.py", 43),
    ("examples/sample_project/app.py", 49),
    ("examples/sample_project/app.py", 58),
    ("examples/sample_project/app.py", 61),
    ("examples/sample_project/app.py", 63),
}


async def test_demo_offline_analysis_then_refactoring(offline_backend: LocalBackend) -> None:
    """Week-1 demo offline: the analysis lists every planted defect of app.py with
    file:line, and the follow-up reaches the refactoring agent with those findings."""
    first = await offline_backend.chat(None, "analyze the code in examples/sample_project/app.py")
    assert first["agent"] == "analysis" and first["type"] == "analysis"
    assert {(f["file"], f["line"]) for f in first["findings"]} >= PLANTED
    assert first["pipeline_used"] == "code_analysis" and first["routing"]["confidence"] > 0.45
    second = await offline_backend.chat(
        first["session_id"], "now refactor it based on that analysis"
    )
    assert second["agent"] == "refactoring" and second["suggestion"] is None
    assert {(f["file"], f["line"]) for f in second["findings"]} >= PLANTED
    diffs = second["details"]["diffs"]
    assert [d["file"] for d in diffs] == ["examples/sample_project/app.py"]
    assert "-    return int(eval(text))" in diffs[0]["diff"]
    assert "apply the change" in second["next_actions"]


async def test_refactoring_prompt_carries_the_analysis_findings(
    tmp_path: Path, workspace: Path
) -> None:
    """With a model, the refactoring step's prompt holds the first answer's findings."""
    prompts: list[str] = []
    backend = fake_backend(tmp_path, workspace, FakeProvider(json_responder(prompts)))
    try:
        first = await backend.chat(None, "analyze the code in examples/sample_project/app.py")
        assert first["summary"].endswith("model review")
        prompts.clear()
        second = await backend.chat(first["session_id"], "now refactor it based on that analysis")
    finally:
        await backend.close()
    assert second["agent"] == "refactoring"
    refactor_prompt = next(p for p in prompts if "Refactor the code" in p)
    for line in (28, 43, 58, 63):
        assert f'"line": {line}' in refactor_prompt or f'"line":{line}' in refactor_prompt
    assert "eval()" in refactor_prompt and "examples/sample_project/app.py" in refactor_prompt
    assert "analyze the code in examples/sample_project/app.py" in refactor_prompt, "history"


async def test_refactoring_without_analysis_suggests_analysing_first(
    offline_backend: LocalBackend,
) -> None:
    answer = await offline_backend.chat(None, "refactor examples/sample_project/utils.py please")
    assert answer["agent"] == "refactoring"
    assert answer["suggestion"] and "Analyse the code first" in answer["suggestion"]
    assert answer["next_actions"] == ["analyze the code in examples/sample_project/utils.py"]
    assert answer["pipeline_used"] is None, "no pipeline runs without findings"


async def test_code_change_applies_only_after_confirmation(
    offline_backend: LocalBackend, workspace: Path
) -> None:
    """A proposed diff is written only after "apply the change", with a backup."""
    app = workspace / "examples" / "sample_project" / "app.py"
    before = app.read_text()
    first = await offline_backend.chat(None, "analyze the code in examples/sample_project/app.py")
    sid = first["session_id"]
    proposal = await offline_backend.chat(sid, "now refactor it based on that analysis")
    assert app.read_text() == before, "nothing is written before the confirmation"
    applied = await offline_backend.chat(sid, "apply the change")
    assert applied["agent"] == "code", applied["routing"]
    after = app.read_text()
    assert "ast.literal_eval(text)" in after and "customer is None" in after
    backup = Path(applied["details"]["backup_dir"]) / "examples" / "sample_project" / "app.py"
    assert backup.read_text() == before
    assert applied["details"]["change_id"] == proposal["details"]["change_id"]
    compile(after, str(app), "exec")
    again = await offline_backend.chat(sid, "apply the change")
    assert app.read_text() == after, "a second confirmation applies nothing twice"
    assert again["details"].get("applied") is None


async def test_testing_agent_writes_and_runs_tests(
    offline_backend: LocalBackend, workspace: Path
) -> None:
    answer = await offline_backend.chat(
        None, "write tests for examples/sample_project/utils.py and run them"
    )
    assert answer["agent"] == "testing"
    run = answer["details"]["run"]
    assert run["exit_code"] == 0 and "passed" in run["verdict"], run["output_tail"]
    test_file = Path(answer["details"]["test_file"])
    assert test_file.is_relative_to(workspace) and test_file.is_file()


async def test_planning_and_deployment_offline(offline_backend: LocalBackend) -> None:
    plan = await offline_backend.chat(
        None,
        "break this down: analyze examples/sample_project/app.py, then refactor the worst "
        "parts, then write tests for the module",
    )
    assert plan["agent"] == "planning"
    subtasks = plan["details"]["plan"]["subtasks"]
    assert [s["agent"] for s in subtasks] == ["analysis", "refactoring", "testing"]
    assert [s["depends_on"] for s in subtasks] == [[], ["s1"], ["s2"]]
    deploy = await offline_backend.chat(None, "plan the production rollout of v2 to kubernetes")
    assert deploy["agent"] == "deployment"
    assert "nothing was deployed" in deploy["summary"] and deploy["details"]["checklist"]


async def test_path_outside_the_workspace_is_an_error_answer(
    offline_backend: LocalBackend, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.py"
    outside.write_text("x = 1\n")
    answer = await offline_backend.chat(None, f"analyze the code in {outside}")
    assert answer["type"] == "error" and "outside the workspace" in answer["summary"]


async def test_bad_message_names_the_field(offline_backend: LocalBackend) -> None:
    with pytest.raises(ValueError, match="message: must be a non-empty string"):
        await offline_backend.chat(None, "   ")
    with pytest.raises(ValueError, match="message: 20001 characters"):
        await offline_backend.chat(None, "x" * 20001)
    with pytest.raises(ValueError, match="message: contains a NUL character"):
        await offline_backend.chat(None, "analyze\x00this")
    with pytest.raises(ValueError, match="message: contains a lone surrogate"):
        await offline_backend.chat(None, "analyze \ud800 this")
    assert await offline_backend.sessions() == [], "a refused message writes nothing"


async def test_another_users_session_is_not_found_and_untouched(
    offline_backend: LocalBackend,
) -> None:
    """A turn naming a session of another user fails as if it did not exist (the shard
    checks, so the HTTP layer needs no store read for it) and appends nothing; a local
    caller without a user (the CLI) may continue it."""
    from actors.agents.assistant import SessionNotOwned

    first = await offline_backend.chat(None, "hello there", user_id="alice")
    sid = first["session_id"]
    with pytest.raises(SessionNotOwned, match=f"no session '{sid}'"):
        await offline_backend.chat(sid, "let me in", user_id="mallory")
    assert len(await offline_backend.history(sid)) == 2
    await offline_backend.chat(sid, "and again")
    assert len(await offline_backend.history(sid)) == 4


class _Crashing:
    name = "analysis"

    async def handle(self, request: AgentRequest) -> AgentResponse:
        raise RuntimeError("segfault-like crash")


class _Hanging:
    name = "analysis"

    async def handle(self, request: AgentRequest) -> AgentResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.parametrize(("agent", "reason"), [(_Crashing(), "failed"), (_Hanging(), "timed out")])
async def test_crashed_or_hung_agent_falls_back_to_general(
    offline_backend: LocalBackend, agent: object, reason: str
) -> None:
    assistant = await offline_backend.assistant()
    assistant.agent_timeout_s = 0.2
    assistant._agents.agents["analysis"] = agent  # type: ignore[attr-defined]
    answer = await offline_backend.chat(None, "analyze the code in examples/sample_project/app.py")
    assert answer["agent"] == "general" and answer["fallback_from"] == "analysis"
    assert reason in answer["fallback_reason"] and answer["summary"].startswith("(The analysis")


async def test_resent_turn_returns_the_stored_answer(offline_backend: LocalBackend) -> None:
    """The same turn id twice: one user turn, one answer, the second call pays nothing."""
    assistant = await offline_backend.assistant()
    sid = await offline_backend.start_session()
    text = "analyze the code in examples/sample_project/utils.py"
    first = await assistant.handle_request(text, sid, turn_id="t-1")
    second = await assistant.handle_request(text, sid, turn_id="t-1")
    assert first == second
    turns = await offline_backend.history(sid)
    assert [t["role"] for t in turns] == ["user", "assistant"]


async def test_context_survives_a_new_process(tmp_path: Path, workspace: Path) -> None:
    """Sessions are written through: a new backend on the same store continues the chat."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    offline = {"registry_factory": lambda: ProviderRegistry(env={})}
    first_backend = LocalBackend(url, workspace=str(workspace), **offline)
    first = await first_backend.chat(None, "analyze the code in examples/sample_project/app.py")
    await first_backend.close()
    second_backend = LocalBackend(url, workspace=str(workspace), **offline)
    try:
        second = await second_backend.chat(
            first["session_id"], "now refactor it based on that analysis"
        )
        sessions = await second_backend.sessions()
    finally:
        await second_backend.close()
    assert second["agent"] == "refactoring" and len(second["findings"]) >= len(PLANTED)
    assert sessions[0]["id"] == first["session_id"] and sessions[0]["turn_count"] == 4
    assert sessions[0]["active_agent"] == "refactoring"


async def test_feedback_shapes_later_prompts(tmp_path: Path, workspace: Path) -> None:
    """A rating is stored with a training record; the preference it teaches ("too
    long" → concise) appears in the next turn's prompt."""
    prompts: list[str] = []
    backend = fake_backend(tmp_path, workspace, FakeProvider(json_responder(prompts)))
    try:
        first = await backend.chat(None, "analyze the code in examples/sample_project/app.py")
        sid = first["session_id"]
        rated = await backend.rate(sid, first["response_id"], 3, "way too long, keep it shorter")
        assert rated["preferences"]["verbosity"] == "concise"
        assert rated["preferences"]["language"] == "python"
        prompts.clear()
        await backend.chat(sid, "analyze the code in examples/sample_project/utils.py")
        store = backend._store
        records = await store.training_records()
        feedback = await store.feedback(session_id=sid)
        with pytest.raises(LookupError):
            await backend.rate(sid, "no-such-response", 5)
    finally:
        await backend.close()
    review_prompt = next(p for p in prompts if "Review the code" in p)
    assert "User preferences:" in review_prompt and "concise" in review_prompt
    assert [f.rating for f in feedback] == [3]
    assert records[0].quality == 0.3 and records[0].pipeline == "code_analysis"


async def test_builtin_workflow_through_the_assistant(
    offline_backend: LocalBackend, workspace: Path
) -> None:
    """analysis_and_refactor runs analysis → plan → code → test with real agents, and
    the code step gets the analysis findings (its diff fixes the planted eval())."""
    answer = await offline_backend.workflow(
        "clean up examples/sample_project/app.py", builtin="analysis_and_refactor"
    )
    assert answer["type"] == "workflow_response"
    steps = {s["id"]: s for s in answer["steps"]}
    assert [s["agent"] for s in answer["steps"]] == ["analysis", "planning", "code", "testing"]
    assert all(s["status"] == "succeeded" for s in answer["steps"]), answer["summary"]
    diffs = steps["code"]["response"]["details"]["diffs"]
    assert any("ast.literal_eval" in d["diff"] for d in diffs)
    order = sorted(answer["steps"], key=lambda s: s["started_at"])
    assert [s["agent"] for s in order] == ["analysis", "planning", "code", "testing"]
    history = await offline_backend.history(answer["session_id"])
    assert history[-1]["meta"]["type"] == "workflow_response"


async def test_run_the_plan_executes_the_sessions_plan(offline_backend: LocalBackend) -> None:
    plan = await offline_backend.chat(
        None,
        "break this down: analyze examples/sample_project/utils.py, then write tests for "
        "examples/sample_project/utils.py",
    )
    assert plan["agent"] == "planning"
    run = await offline_backend.chat(plan["session_id"], "run the plan")
    assert run["type"] == "workflow_response"
    assert [s["status"] for s in run["steps"]] == ["succeeded", "succeeded"]

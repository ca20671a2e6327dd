"""serve._chat_render: responses, sessions, history and progress as plain text."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from actors.agents.models import (
    AgentResponse,
    Finding,
    Plan,
    SubTask,
    WorkflowResponse,
    WorkflowStep,
)
from serve._chat_render import (
    MAX_FINDINGS,
    TurnProgress,
    print_history,
    print_preferences,
    print_response,
    print_sessions,
)


def plain() -> tuple[Console, io.StringIO]:
    """A console without colour or terminal, 120 columns, writing into a buffer."""
    buffer = io.StringIO()
    return Console(file=buffer, width=120, color_system=None, highlight=False), buffer


def rendered(response: dict[str, Any], **kwargs: Any) -> str:
    console, buffer = plain()
    print_response(console, response, **kwargs)
    return buffer.getvalue()


def test_header_fallback_and_suggestion() -> None:
    """The header names agent, type, confidence, pipeline, cost, latency; a fallback says who answered instead."""
    text = rendered(
        AgentResponse(
            type="refactoring",
            agent="general",
            summary="Analyse first.",
            confidence=0.4,
            pipeline_used="refactoring",
            cost_usd=0.5,
            latency_ms=250,
            suggestion='Analyse the code first, e.g. "analyze the code in app.py".',
            fallback_from="refactoring",
            fallback_reason="the refactoring agent timed out",
        ).model_dump(mode="json")
    )
    first = text.splitlines()[0]
    assert (
        first
        == "general agent · refactoring · confidence 0.40 · pipeline refactoring · $0.5000 · 250 ms"
    )
    assert "answered by general instead of refactoring: the refactoring agent timed out" in text
    assert 'Suggestion: Analyse the code first, e.g. "analyze the code in app.py".' in text


def test_findings_sorted_relative_to_workspace_and_capped() -> None:
    """Findings show file:line relative to the workspace, sorted by file then line, capped with a note."""
    findings = [
        Finding(message=f"m{n}", file="/w/pkg/mod.py", line=MAX_FINDINGS + 5 - n, rule="R")
        for n in range(MAX_FINDINGS + 5)
    ] + [Finding(message="outside", file="/elsewhere/x.py", line=1), Finding(message="no file")]
    text = rendered(
        AgentResponse(
            type="analysis", agent="analysis", summary="s", findings=findings
        ).model_dump(),
        workspace="/w",
    )
    assert f"Findings ({MAX_FINDINGS + 7})" in text
    assert text.index("  -  ") < text.index("/elsewhere/x.py:1") < text.index("pkg/mod.py:1 ")
    assert "/w/pkg" not in text and "pkg/mod.py:2 " in text
    assert "… 7 more (--json shows all)" in text


def test_details_diffs_plan_steps_tests_and_rollout() -> None:
    """Diffs, plan tree, workflow steps, generated tests, their run and rollout stages are shown."""
    diff = "--- a/app.py\n+++ b/app.py\n@@ -58 +58 @@\n-    return int(eval(text))\n+    return int(text)\n"
    plan = Plan(
        summary="fix and test",
        subtasks=[
            SubTask(id="t1", description="analyse", agent="analysis"),
            SubTask(id="t2", description="write tests", agent="testing", depends_on=["t1"]),
        ],
    )
    steps = [
        WorkflowStep(id="t1", agent="analysis", description="analyse", status="succeeded",
                     response=AgentResponse(type="analysis", agent="analysis", summary="3 issues")),
        WorkflowStep(id="t2", agent="testing", description="write tests", status="failed", error="timeout"),
    ]  # fmt: skip
    workflow = WorkflowResponse(
        type="workflow_response",
        agent="workflow",
        summary="Workflow done.",
        steps=steps,
        plan=plan,
        details={
            "diffs": [{"file": "app.py", "diff": diff, "description": "app.py:58 S307"}],
            "notes": ["dropped one diff"],
            "module": "app.py",
            "code": "def test_imports():\n    import app\n",
            "run": {"verdict": "1 passed", "exit_code": 0, "output_tail": "ok"},
            "stages": [
                {
                    "name": "canary",
                    "actions": ["deploy 5%"],
                    "checks": ["errors flat"],
                    "rollback": "redeploy",
                }
            ],
            "risks": ["migration"],
        },
    )
    text = rendered(workflow.model_dump(mode="json"))
    assert "Diff of app.py\napp.py:58 S307\n" in text
    assert "-    return int(eval(text))" in text and "+    return int(text)" in text
    assert "note: dropped one diff" in text
    assert "Plan: fix and test" in text and "t2 · testing — write tests (after t1)" in text
    assert "✓ t1 analysis — analyse (succeeded)" in text and "3 issues" in text
    assert "✗ t2 testing — write tests (failed)" in text and "timeout" in text
    assert "tests for app.py" in text and "def test_imports():" in text
    assert "Test run: 1 passed" in text
    assert "1. canary" in text and "deploy 5%" in text and "checks: errors flat" in text
    assert "rollback: redeploy" in text and "migration" in text


def test_markup_in_answers_is_printed_literally() -> None:
    """Text from models is never read as rich markup ([bold], [/] stay as typed)."""
    text = rendered(
        AgentResponse(type="general", agent="general", summary="use [bold] and [/] literally",
                      recommendations=["list[int]"], next_actions=["say [red]hi[/red]"]).model_dump()
    )  # fmt: skip
    assert "use [bold] and [/] literally" in text
    assert "1. list[int]" in text and "/n 1  say [red]hi[/red]" in text


def test_sessions_history_and_preferences() -> None:
    """The sessions table marks the current one; history lines name who spoke; preferences in one line."""
    console, buffer = plain()
    rows: list[dict[str, Any]] = [
        {"id": "a" * 32, "updated_at": "2025-01-02T03:04:05+00:00", "turn_count": 4,
         "active_agent": "analysis", "title": "analyze the code"},
        {"id": "b" * 32, "updated_at": None, "turn_count": 0, "active_agent": None, "title": ""},
    ]  # fmt: skip
    print_sessions(console, rows, current="a" * 32)
    print_history(
        console,
        [
            {"seq": 0, "role": "user", "content": "analyze\n  the code", "meta": {}},
            {"seq": 1, "role": "assistant", "content": "3 issues", "meta": {"agent": "analysis"}},
        ],
    )
    print_preferences(
        console, {"verbosity": "brief", "focus_areas": ["security", "style"], "hint": "Be brief."}
    )
    print_preferences(console, {})
    text = buffer.getvalue()
    assert "*  aaaaaaaaaaaa  2025-01-02 03:04  4" in text and "analyze the code" in text
    assert "bbbbbbbbbbbb" in text
    assert "you: analyze the code" in text and "analysis: 3 issues" in text
    assert "learned preferences: verbosity brief · focus areas security, style" in text
    assert "no preferences learned yet" in text and "Be brief" not in text


def test_progress_lines_and_tokens_off_terminal() -> None:
    """Off a terminal each event is one line; tokens are written through and kept in .streamed."""
    console, buffer = plain()
    with TurnProgress(console) as progress:
        progress({"event": "routing"})
        progress({"event": "routed", "agent": "analysis", "confidence": 0.931})
        progress({"event": "pipeline", "pipeline": "code_analysis"})
        progress({"event": "step", "step": "review"})
        progress({"event": "done", "response_id": "r1"})  # nothing to show
        progress({"event": "token", "text": "Hel"})
        progress({"event": "token", "text": "lo"})
        progress({"event": "step", "step": "late"})  # after tokens: not shown
    assert buffer.getvalue() == (
        "routing…\n→ analysis agent (0.93)\nrunning code_analysis\n"
        "running code_analysis: step review\nHello\n"
    )
    assert progress.streamed == "Hello"


def test_progress_quiet_mode_shows_nothing_off_terminal() -> None:
    """With lines and tokens off (chat --once), progress writes nothing when not on a terminal."""
    console, buffer = plain()
    with TurnProgress(console, lines=False, tokens=False) as progress:
        progress({"event": "routed", "agent": "analysis"})
        progress({"event": "token", "text": "x"})
    assert buffer.getvalue() == "" and progress.streamed == ""


def test_progress_status_line_on_a_terminal() -> None:
    """On a terminal the status line is live and transient; streamed tokens remain."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    with TurnProgress(console) as progress:
        progress({"event": "routed", "agent": "analysis", "confidence": 0.5})
        progress({"event": "token", "text": "streamed words"})
    assert "streamed words\n" in buffer.getvalue()

"""The agents subtree in the running tree: turns through shards, router and agent
actors; an agent killed mid-request answers through the fallback agent and restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from actors._ray import lookup
from pipelines.providers.fakes import FaultPlan
from tests.ray.test_faults import _restarts, sigkill

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
APP = "examples/sample_project/app.py"


def backend(tree: dict[str, Any]) -> Any:
    from serve.http.tree_platform import TreePlatform
    from serve.platform_backend import PlatformBackend

    return PlatformBackend(TreePlatform(tree["config"].shards, workspace=str(REPO)))


def test_agents_subtree_is_supervised(tree: dict[str, Any]) -> None:
    from actors.status import status_rows

    paths = {r["path"]: r for r in status_rows() or []}
    for name in ("router", "analysis", "refactoring", "testing", "planning", "code", "general"):
        assert paths[f"agents/{name}"]["state"] == "alive", name
    assert paths["agents/deployment"]["class"] == "Agent"


async def test_analysis_then_refactoring_through_the_tree(
    tree: dict[str, Any], fake_plan: Any
) -> None:
    """Context lives in the shard (and the store): the second turn reaches the
    refactoring agent with the first turn's findings."""
    chat = backend(tree)
    first = await chat.chat(None, f"analyze the code in {APP}")
    assert first["agent"] == "analysis", first
    lines = {f["line"] for f in first["findings"] if f["file"] == APP}
    assert {4, 28, 43, 49, 58, 61, 63} <= lines
    second = await chat.chat(first["session_id"], "now refactor it based on that analysis")
    assert second["agent"] == "refactoring" and second["suggestion"] is None
    assert {f["line"] for f in second["findings"]} >= {28, 43, 58}
    summaries = await chat.sessions()
    assert first["session_id"] in {s["id"] for s in summaries}


async def test_killed_agent_falls_back_and_restarts(tree: dict[str, Any], fake_plan: Any) -> None:
    """SIGKILL the analysis agent while its LLM call is in flight: the caller gets the
    general agent's answer saying so, and the supervisor restarts the analysis agent."""
    fake_plan.state.set_plan(FaultPlan(latency_ms=1500))
    before = _restarts("agents/analysis")
    chat = backend(tree)
    seen = fake_plan.state.request_count
    turn = asyncio.create_task(chat.chat(None, f"analyze the code in {APP}"))
    deadline = time.monotonic() + 30
    while fake_plan.state.request_count == seen:  # the review step reached the provider
        assert time.monotonic() < deadline, "the analysis never called the provider"
        await asyncio.sleep(0.02)
    await asyncio.to_thread(sigkill, "agents/analysis")
    answer = await asyncio.wait_for(turn, timeout=60)
    assert answer["agent"] == "general" and answer["fallback_from"] == "analysis"
    assert "failed" in answer["fallback_reason"]
    while _restarts("agents/analysis") != before + 1 or lookup("agents/analysis") is None:
        assert time.monotonic() < deadline + 30, "the analysis agent was not restarted"
        await asyncio.sleep(0.05)
    fake_plan.state.set_plan(FaultPlan())
    # Every shard (each holds its own handle to the agent, the dead one included)
    # reaches the restarted agent: a stale handle is re-resolved, not a fallback.
    from actors.sessions import shard_for

    shards = tree["config"].shards
    sessions = {shard_for(f"after-{i}", shards): f"after-{i}" for i in range(50)}
    assert len(sessions) == shards
    for session_id in sessions.values():
        again = await chat.chat(session_id, f"analyze the code in {APP}")
        assert again["agent"] == "analysis" and again["fallback_from"] is None, session_id


async def test_killed_executor_mid_turn_fails_over_from_the_agent(
    tree: dict[str, Any], fake_plan: Any
) -> None:
    """Agents place runs on the executors themselves: SIGKILL the executor running a
    turn's pipeline and the agent's pool runs it on the other executor (same run id);
    the turn is answered by the agent it was routed to, not by the fallback."""
    from store.sqlite import SqliteStore

    fake_plan.state.set_plan(FaultPlan(latency_ms=1500))
    chat = backend(tree)
    store = SqliteStore(tree["db"])
    try:
        seen = fake_plan.state.request_count
        turn = asyncio.create_task(chat.chat(None, "what is a race condition, briefly?"))
        deadline = time.monotonic() + 30
        while fake_plan.state.request_count == seen:  # the run reached the provider
            assert time.monotonic() < deadline, "the turn never called the provider"
            await asyncio.sleep(0.02)
        running = await store.list_runs(status="running", limit=5)
        assert len(running) == 1, running
        victim = running[0].executor
        await asyncio.to_thread(sigkill, f"executors/{victim}")
        fake_plan.state.set_plan(FaultPlan())
        answer = await asyncio.wait_for(turn, timeout=90)
        record = await store.get_run(f"{answer['response_id']}-general")
    finally:
        fake_plan.state.set_plan(FaultPlan())
        await store.close()
    assert answer["agent"] == "general" and answer["fallback_from"] is None, answer
    assert record is not None and record.status == "succeeded" and record.executor != victim

"""The application tree on a real local Ray: every path up, chat turns, dashboard view."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors._ray import actor_name

pytestmark = pytest.mark.ray

PATHS = [
    "app",
    "store",
    "telemetry",
    "gateway",
    "sessions",
    "sessions/shard-0",
    "sessions/shard-1",
    "executors",
    "executors/executor-0",
    "executors/executor-1",
    "health",
]


def auth_token() -> str:
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token:
        return token
    return (Path.home() / ".ray" / "auth_token").read_text().strip()


def test_dashboard_lists_every_path_of_the_tree(
    tree: dict[str, Any], ray_session: dict[str, Any]
) -> None:
    """The Ray dashboard's HTTP API (with the token) shows every actor of the tree by name."""
    url = f"{ray_session['dashboard_url']}/api/v0/actors"
    params = {
        "limit": "10000",
        "filter_keys": "state",
        "filter_predicates": "=",
        "filter_values": "ALIVE",
    }
    unauthorised = httpx.get(url, params=params, timeout=30)
    assert unauthorised.status_code == 401
    response = httpx.get(
        url, params=params, headers={"Authorization": f"Bearer {auth_token()}"}, timeout=30
    )
    response.raise_for_status()
    actors = response.json()["data"]["result"]["result"]
    names = {a.get("name") for a in actors if a.get("ray_namespace") == "elexirion"}
    for path in PATHS:
        assert actor_name(path) in names, path
    classes = {a["name"]: a["class_name"] for a in actors if a.get("name")}
    assert classes[actor_name("sessions/shard-0")] == "SessionShard"
    assert classes[actor_name("executors/executor-0")] == "PipelineExecutor"


def test_status_rows_cover_the_tree(tree: dict[str, Any]) -> None:
    """status_rows lists each path with class, node, pid, state, restarts and uptime."""
    from actors.status import status_rows

    rows = status_rows()
    assert rows is not None
    by_path = {r["path"]: r for r in rows}
    assert set(PATHS) <= set(by_path)
    shard = by_path["sessions/shard-0"]
    assert shard["class"] == "SessionShard" and shard["pid"] and shard["node"]
    assert shard["state"] in ("alive", "running") and isinstance(shard["restarts"], int)


async def test_chat_turn_goes_through_the_tree(tree: dict[str, Any], fake_plan: Any) -> None:
    """A chat turn is written to its session, answered by general_chat on an executor, and remembered."""
    from actors.app import TreeClient

    client = TreeClient(shards=tree["config"].shards)
    session = f"s-{uuid.uuid4().hex[:8]}"
    first = await client.chat(session, "hello tree", turn_id=uuid.uuid4().hex)
    assert first["answer"].startswith("fake anthropic reply")
    second = await client.chat(session, "and again", turn_id=uuid.uuid4().hex)
    assert second["user_seq"] == 3 and second["assistant_seq"] == 4
    history = await client.history(session)
    assert [t["role"] for t in history] == ["user", "assistant", "user", "assistant"]
    last_prompt = str(fake_plan.state.requests[-1].body["messages"])
    assert "hello tree" in last_prompt, "the second turn's prompt carries the session history"


async def test_resending_a_turn_is_idempotent(tree: dict[str, Any], fake_plan: Any) -> None:
    """Re-sending a chat turn with the same turn id returns the same turn and writes no duplicate."""
    from actors.app import TreeClient

    client = TreeClient(shards=tree["config"].shards)
    session, turn = f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    a, b = await asyncio.gather(
        client.chat(session, "once", turn_id=turn), client.chat(session, "once", turn_id=turn)
    )
    assert a["assistant_seq"] == b["assistant_seq"] == 2
    assert len(await client.history(session)) == 2


def test_execute_on_cluster_runs_a_pipeline(tree: dict[str, Any]) -> None:
    """execute_on_cluster runs a submitted pipeline on the least-loaded executor."""
    from actors.app import execute_on_cluster

    yaml = "workflow:\n  name: t\n  steps:\n    - {name: e, type: test_echo, value: 41}\n"
    summary = execute_on_cluster({"yaml": yaml, "source": "inline.yaml"}, {})
    assert summary["status"] == "succeeded" and summary["results"]["e"]["value"] == 41
    assert summary["executor"].startswith("executor-")


async def test_store_calls_in_one_batch_each_hear_their_own_outcome(
    tree: dict[str, Any],
) -> None:
    """Concurrent calls of one process share actor calls to the store; through real Ray,
    each caller gets its own result, and a store error raises for its caller alone."""
    from actors.store_actor import StoreClient
    from store.errors import NotFound
    from store.models import RunRecord

    client = StoreClient()
    sent: list[str] = []
    real_call = client._ref.call

    async def counting(method: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(method)
        return await real_call(method, *args, **kwargs)

    client._ref.call = counting  # type: ignore[method-assign]
    tag = uuid.uuid4().hex[:8]
    runs = [
        RunRecord(
            run_id=f"batch-{tag}-{i}",
            pipeline="general_chat",
            status="running",
            inputs={"i": i},
            executor="test",
            node="",
            result=None,
            error=None,
            created_at=1.0,
            updated_at=1.0,
        )
        for i in range(20)
    ]
    outcomes = await asyncio.gather(
        *(client.create_run(run) for run in runs),
        client.update_run(f"batch-{tag}-missing", status="succeeded"),
        return_exceptions=True,
    )
    assert outcomes[:20] == [True] * 20
    assert isinstance(outcomes[20], NotFound) and "missing" in str(outcomes[20])
    assert "call_many" in sent and len(sent) < 21, sent  # batched, not one call each
    stored = await asyncio.gather(*(client.get_run(run.run_id) for run in runs))
    assert [r.inputs["i"] for r in stored] == list(range(20))

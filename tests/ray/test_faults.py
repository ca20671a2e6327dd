"""Crashes lose nothing: a shard killed mid-conversation, an executor killed mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from typing import Any

import pytest
import ray

from actors._ray import lookup
from pipelines.providers.fakes import FaultPlan
from store.sqlite import SqliteStore

pytestmark = pytest.mark.ray


def sigkill(path: str) -> int:
    handle = lookup(path)
    pid = int(ray.get(handle.info.remote(), timeout=30)["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


def sigkill_and_wait(path: str) -> None:
    """SIGKILL the actor and wait until its successor answers (so kills do not overlap)."""
    old = sigkill(path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        handle = lookup(path)
        try:
            if handle is not None and ray.get(handle.info.remote(), timeout=2)["pid"] != old:
                return
        except Exception:  # noqa: BLE001, S110 - the successor is not up yet
            pass
        time.sleep(0.02)
    raise AssertionError(f"{path} did not come back")


def _restarts(path: str) -> int:
    from actors.status import status_rows

    rows = {r["path"]: r for r in status_rows() or []}
    return int(rows[path]["restarts"])


async def test_killing_a_shard_loses_no_acknowledged_turn(
    tree: dict[str, Any], fake_plan: Any
) -> None:
    """Sessions keep talking while their shard is SIGKILLed twice; every acknowledged turn is in the store, once."""
    from actors.app import TreeClient
    from actors.sessions import shard_for

    fake_plan.state.set_plan(FaultPlan(latency_ms=20))
    client = TreeClient(shards=tree["config"].shards)
    sessions = [
        s for s in (f"kill-{uuid.uuid4().hex[:8]}" for _ in range(40)) if shard_for(s, 2) == 0
    ][:8]
    acknowledged: dict[str, list[str]] = {s: [] for s in sessions}

    async def talk(session: str) -> None:
        for i in range(5):
            turn = uuid.uuid4().hex
            result = await client.chat(
                session, f"message {i}", turn_id=turn
            )  # re-sends after a death
            acknowledged[session].append(result["turn_id"])

    async def chaos() -> None:
        for _ in range(2):
            await asyncio.sleep(0.4)
            await asyncio.to_thread(sigkill_and_wait, "sessions/shard-0")

    before = _restarts("sessions/shard-0")
    await asyncio.gather(*(talk(s) for s in sessions), chaos())
    assert _restarts("sessions/shard-0") == before + 2, "the shard really died twice and came back"
    store = SqliteStore(tree["db"])
    try:
        for session, turns in acknowledged.items():
            stored = await store.turns(session)
            ids = [t.turn_id for t in stored]
            assert len(ids) == len(set(ids)), "no duplicate turns"
            assert [t.seq for t in stored] == list(range(1, len(stored) + 1)), "gap-free sequence"
            for turn in turns:
                assert f"{turn}:user" in ids and f"{turn}:assistant" in ids
    finally:
        await store.close()


async def test_killing_an_executor_mid_run_resumes_elsewhere(
    tree: dict[str, Any], fake_plan: Any
) -> None:
    """The run finishes on another executor from its last checkpoint; finished steps are not called again."""
    from actors.app import TreeClient

    fake_plan.state.set_plan(FaultPlan(latency_ms=400))
    yaml = "workflow:\n  name: four\n  steps:\n" + "".join(
        f"    - {{name: s{i}, type: claude, prompt: 'step {i} of {{{{inputs.tag}}}}'}}\n"
        for i in range(1, 5)
    )
    tag = uuid.uuid4().hex[:8]
    run_id = f"kill-exec-{tag}"
    client = TreeClient(shards=tree["config"].shards)
    store = SqliteStore(tree["db"])
    try:
        task = asyncio.create_task(
            client.run({"yaml": yaml, "source": "four.yaml"}, {"tag": tag}, run_id=run_id)
        )
        victim = None
        for _ in range(200):  # wait until two steps are checkpointed
            checkpoint = await store.load_checkpoint(run_id)
            if checkpoint and checkpoint["step_index"] >= 2:
                victim = (await store.get_run(run_id)).executor
                break
            await asyncio.sleep(0.05)
        assert victim is not None, "the run never checkpointed two steps"
        await asyncio.to_thread(sigkill, f"executors/{victim}")
        summary = await asyncio.wait_for(task, timeout=60)
    finally:
        await store.close()
    assert summary["status"] == "succeeded" and summary["executor"] != victim
    assert summary["resumed_at"] is not None and summary["resumed_at"] >= 2
    prompts = [
        json.dumps(r.body["messages"])
        for r in fake_plan.state.requests
        if tag in json.dumps(r.body)
    ]
    for step in (1, 2):
        assert sum(f"step {step} of {tag}" in p for p in prompts) == 1, f"step {step} repeated"
    assert sum(f"step 4 of {tag}" in p for p in prompts) == 1

"""SessionShard without Ray: write-through turns, idempotency, LRU, reload after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.sessions import HISTORY_TURNS, SessionShard, shard_for
from store.sqlite import SqliteStore


class FakeRuns:
    """Answers every run with one LLM-like result; records run ids."""

    def __init__(self) -> None:
        self.run_ids: list[str] = []
        self.inputs: list[dict[str, Any]] = []

    async def run(self, pipeline: Any, inputs: dict[str, Any], *, run_id: str) -> dict[str, Any]:
        self.run_ids.append(run_id)
        self.inputs.append(inputs)
        return {
            "run_id": run_id,
            "results": {"answer": {"text": f"echo: {inputs['message']}", "provider": "fake"}},
        }


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = SqliteStore(tmp_path / "s.db")
    await store.migrate()
    yield store
    await store.close()


async def test_chat_writes_both_turns_through(store: SqliteStore) -> None:
    """A chat turn stores the user and assistant turns before returning."""
    shard = SessionShard(0, store, FakeRuns())
    result = await shard.chat("s1", "hello", turn_id="t1")
    stored = await store.turns("s1")
    assert [(t.role, t.content) for t in stored] == [
        ("user", "hello"),
        ("assistant", "echo: hello"),
    ]
    assert result["assistant_seq"] == 2 and result["answer"] == "echo: hello"


async def test_history_reaches_the_pipeline(store: SqliteStore) -> None:
    """The second turn's pipeline input carries the first turn as history."""
    runs = FakeRuns()
    shard = SessionShard(0, store, runs)
    await shard.chat("s1", "first", turn_id="t1")
    await shard.chat("s1", "second", turn_id="t2")
    assert (
        "user: first" in runs.inputs[1]["history"]
        and "assistant: echo: first" in runs.inputs[1]["history"]
    )


async def test_resent_turn_is_not_duplicated(store: SqliteStore) -> None:
    """Re-sending the same turn id returns the same seqs and stores nothing new."""
    runs = FakeRuns()
    shard = SessionShard(0, store, runs)
    a = await shard.chat("s1", "once", turn_id="t1")
    b = await shard.chat("s1", "once", turn_id="t1")
    assert (a["user_seq"], a["assistant_seq"]) == (b["user_seq"], b["assistant_seq"])
    assert len(await store.turns("s1")) == 2
    assert runs.run_ids == ["turn-t1", "turn-t1"], "the same run id, so the executor dedups the run"


async def test_restarted_shard_reloads_from_the_store(store: SqliteStore) -> None:
    """A fresh shard (after a crash) serves a session's history from the store."""
    await SessionShard(0, store, FakeRuns()).chat("s1", "before the crash", turn_id="t1")
    reborn = SessionShard(0, store, FakeRuns())
    history = await reborn.history("s1")
    assert [t["content"] for t in history] == ["before the crash", "echo: before the crash"]
    assert reborn.stats()["loads"] == 1


async def test_lru_evicts_and_keeps_recent_history(store: SqliteStore) -> None:
    """Beyond capacity the least recently used session leaves memory; only recent turns stay hot."""
    shard = SessionShard(0, store, FakeRuns(), capacity=2)
    for session in ("a", "b", "c"):
        await shard.append(session, "user", "hi", turn_id=f"{session}-1")
    assert shard.stats()["hot_sessions"] == 2 and shard.evictions == 1
    for i in range(HISTORY_TURNS + 5):
        await shard.append("c", "user", f"m{i}", turn_id=f"c-{i + 2}")
    assert len(await shard.history("c")) == HISTORY_TURNS
    assert len(await shard.history("c", last=HISTORY_TURNS + 6)) == HISTORY_TURNS + 6


def test_shard_for_is_stable_and_spread() -> None:
    """Sessions map to the same shard every time and spread over all shards."""
    ids = [f"session-{i}" for i in range(400)]
    assert [shard_for(s, 4) for s in ids] == [shard_for(s, 4) for s in ids]
    counts = [sum(shard_for(s, 4) == k for s in ids) for k in range(4)]
    assert min(counts) > 60

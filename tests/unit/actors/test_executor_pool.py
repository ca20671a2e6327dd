"""PipelineExecutor and ExecutorPool without Ray: checkpointed runs, resume elsewhere, placement."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import ActorDiedError

from actors.executor import PipelineExecutor
from actors.pool import ExecutorPool, Slot
from pipelines.errors import ProviderError, StepFailed
from pipelines.providers.registry import ProviderRegistry
from pipelines.testing import FakeProvider
from store.sqlite import SqliteStore

YAML = "workflow:\n  name: three\n  steps:\n" + "".join(
    f"    - {{name: s{i}, type: claude, prompt: 'step {i}'}}\n" for i in range(1, 4)
)


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = SqliteStore(tmp_path / "s.db")
    await store.migrate()
    yield store
    await store.close()


def executor(store: SqliteStore, provider: FakeProvider, name: str = "e0") -> PipelineExecutor:
    return PipelineExecutor(name, store, lambda: ProviderRegistry({"anthropic": provider}, env={}))


async def test_run_records_and_finishes(store: SqliteStore) -> None:
    """A run is recorded with its YAML, checkpointed, and marked succeeded with its results."""
    provider = FakeProvider(default="ok")
    summary = await executor(store, provider).run("r1", {"yaml": YAML, "source": "three.yaml"}, {})
    assert summary["status"] == "succeeded" and set(summary["results"]) == {"s1", "s2", "s3"}
    record = await store.get_run("r1")
    assert record.pipeline_yaml == YAML and record.status == "succeeded"
    assert await store.load_checkpoint("r1") is None, "a finished run clears its checkpoint"


async def test_resume_on_another_executor_skips_finished_steps(store: SqliteStore) -> None:
    """A run that died after step 2 resumes elsewhere at step 3; steps 1-2 are not called again."""
    first = FakeProvider(["one", "two", ProviderError("gone", code="auth")])
    with pytest.raises(StepFailed):
        await executor(store, first, "e0").run("r2", {"yaml": YAML, "source": "three.yaml"}, {})
    await store.update_run("r2", status="running")  # as if the executor had died mid-step
    second = FakeProvider(["three"])
    summary = await executor(store, second, "e1").resume("r2")
    assert second.prompts() == ["step 3"]
    assert summary["executor"] == "e1" and summary["resumed_at"] == 2


async def test_finished_run_is_not_run_twice(store: SqliteStore) -> None:
    """Asking again for a succeeded run returns the stored result without calling the provider."""
    provider = FakeProvider(default="ok")
    ex = executor(store, provider)
    await ex.run("r3", {"yaml": YAML, "source": "x"}, {})
    await ex.run("r3", {"yaml": YAML, "source": "x"}, {})
    assert provider.call_count == 3


class FakeHandle:
    """An executor handle whose calls go to a PipelineExecutor, or die like a killed actor."""

    def __init__(self, ex: PipelineExecutor, node: str, *, dies: bool = False) -> None:
        self.ex, self.node, self.dies, self.calls = ex, node, dies, []
        outer = self

        class Method:
            def __init__(self, name: str) -> None:
                self.name = name

            async def remote(self, *args: Any) -> Any:
                outer.calls.append(self.name)
                if self.name == "info":
                    return {"node": outer.node}
                if outer.dies:
                    raise ActorDiedError()
                return await getattr(outer.ex, self.name)(*args)

        self.run, self.resume, self.info = Method("run"), Method("resume"), Method("info")


async def test_pool_fails_over_to_a_live_executor(store: SqliteStore) -> None:
    """When the chosen executor dies, the pool resumes the run on another one."""
    provider = FakeProvider(default="ok")
    dead = FakeHandle(executor(store, provider, "e0"), "n1", dies=True)
    live = FakeHandle(executor(store, provider, "e1"), "n2")
    pool = ExecutorPool(lambda: [Slot("e0", dead), Slot("e1", live)])
    summary = await pool.run({"yaml": YAML, "source": "x"}, {}, run_id="r4")
    assert summary["status"] == "succeeded" and pool.failovers == 1
    assert dead.calls[0] == "run" and live.calls == ["run"]


async def test_pool_places_on_a_requested_node(store: SqliteStore) -> None:
    """With node=..., the run goes to an executor on that node."""
    provider = FakeProvider(default="ok")
    a = FakeHandle(executor(store, provider, "e0"), "n1")
    b = FakeHandle(executor(store, provider, "e1"), "n2")
    pool = ExecutorPool(lambda: [Slot("e0", a), Slot("e1", b)])
    summary = await pool.run({"yaml": YAML, "source": "x"}, {}, run_id="r5", node="n2")
    assert summary["executor"] == "e1" and "run" not in a.calls


async def test_concurrent_callers_share_one_run(store: SqliteStore) -> None:
    """Two callers asking for the same run id wait on one execution."""
    provider = FakeProvider(default="ok", latency_s=0.01)
    handle = FakeHandle(executor(store, provider), "n1")
    pool = ExecutorPool(lambda: [Slot("e0", handle)])
    one, two = await asyncio.gather(
        pool.run({"yaml": YAML, "source": "x"}, {}, run_id="r6"),
        pool.run({"yaml": YAML, "source": "x"}, {}, run_id="r6"),
    )
    assert one == two and provider.call_count == 3


async def test_idle_executors_take_turns(store: SqliteStore) -> None:
    """With every executor idle, consecutive runs go to each in turn (callers that each
    see only their own load must not all pile onto the first executor)."""
    provider = FakeProvider(default="ok")
    handles = [FakeHandle(executor(store, provider, f"e{i}"), "n1") for i in range(3)]
    pool = ExecutorPool(lambda: [Slot(f"e{i}", h) for i, h in enumerate(handles)])
    for i in range(6):
        await pool.run({"yaml": YAML, "source": "x"}, {}, run_id=f"turns-{i}")
    assert [len(h.calls) for h in handles] == [2, 2, 2]

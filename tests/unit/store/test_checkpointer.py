"""StoreCheckpointer: the runner's checkpoints kept in the store, on both backends."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipelines.errors import ConfigError, ProviderError, StepFailed
from pipelines.loader import load_pipeline_text
from pipelines.providers.registry import ProviderRegistry
from pipelines.runner import Runner
from pipelines.runner.checkpoint import Checkpoint, Checkpointer, run_key
from pipelines.testing import FakeProvider
from store.base import Store
from store.checkpointer import StoreCheckpointer

FOUR_STEPS = """\
workflow:
  name: four
  checkpoint_enabled: true
  steps:
    - {name: s1, type: claude, prompt: "one"}
    - {name: s2, type: claude, prompt: "two after {{steps.s1.text}}"}
    - {name: s3, type: claude, prompt: "three after {{steps.s2.text}}"}
    - {name: s4, type: claude, prompt: "four"}
"""


def _checkpoint(**changes: object) -> Checkpoint:
    fields: dict[str, object] = {
        "run_key": "four-abc", "pipeline": "four", "fingerprint": "f1", "step_index": 2,
        "results": {"s1": {"text": "r1"}, "s2": {"text": "ré 😀"}}, "variables": {"n": 1},
        "meta": {"attempt": 1},
    }  # fmt: skip
    fields.update(changes)
    return Checkpoint(**fields)  # type: ignore[arg-type]


async def test_save_load_clear_round_trip(store: Store) -> None:
    """A saved checkpoint loads back equal; a later save replaces it; clear forgets it."""
    checkpointer = StoreCheckpointer(store)
    assert isinstance(checkpointer, Checkpointer)
    assert await checkpointer.load("four-abc") is None
    await checkpointer.save(_checkpoint())
    await checkpointer.save(_checkpoint(step_index=3))
    assert await checkpointer.load("four-abc") == _checkpoint(step_index=3)
    await checkpointer.clear("four-abc")
    assert await checkpointer.load("four-abc") is None


async def test_values_that_are_not_json_are_stored_as_text(store: Store) -> None:
    """Like the JSON file checkpointer, non-JSON values become str(); NaN too, as no backend stores it."""
    checkpointer = StoreCheckpointer(store)
    await checkpointer.save(_checkpoint(results={"p": Path("/x"), "nan": math.nan}))
    loaded = await checkpointer.load("four-abc")
    assert loaded is not None and loaded.results == {"p": "/x", "nan": "nan"}


async def test_unreadable_checkpoint_is_a_clear_config_error(store: Store) -> None:
    """Stored data that does not fit Checkpoint raises the runner's ConfigError naming the run key."""
    await store.save_checkpoint("four-abc", {"step_index": 1, "unexpected": True})
    with pytest.raises(ConfigError, match=r"four-abc.*clear it"):
        await StoreCheckpointer(store).load("four-abc")


async def test_runner_resumes_from_the_store_after_a_crash(store: Store, tmp_path: Path) -> None:
    """After a crash in step 3 the rerun, checkpointing in the store, calls the provider for steps 3 and 4 only."""
    loaded = load_pipeline_text(FOUR_STEPS)

    def runner(provider: FakeProvider) -> Runner:
        return Runner(
            providers=ProviderRegistry({"anthropic": provider}, env={}),
            checkpointer=StoreCheckpointer(store),
            workspace_dir=tmp_path / "ws",
        )

    first = FakeProvider(["r1", "r2", ProviderError("boom", code="invalid_request")])
    with pytest.raises(StepFailed):
        await runner(first).run(loaded, {"x": 1})
    saved = await store.load_checkpoint(run_key("four", {"x": 1}))
    assert saved is not None and saved["step_index"] == 2

    second = FakeProvider(["r3", "r4"])
    result = await runner(second).run(loaded, {"x": 1})
    assert second.call_count == 2 and second.prompts()[0] == "three after r2"
    assert [result.results[s]["text"] for s in ("s1", "s2", "s3", "s4")] == ["r1", "r2", "r3", "r4"]
    assert await store.load_checkpoint(run_key("four", {"x": 1})) is None, "success clears it"

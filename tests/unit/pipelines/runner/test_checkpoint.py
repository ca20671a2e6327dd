"""Checkpoint and resume: a rerun starts at the step that failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.errors import ProviderError, StepFailed
from pipelines.loader import load_pipeline_text
from pipelines.providers.registry import ProviderRegistry
from pipelines.runner import JsonFileCheckpointer, Runner
from pipelines.testing import FakeProvider

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


def _runner(provider: FakeProvider, tmp_path: Path) -> Runner:
    return Runner(
        providers=ProviderRegistry({"anthropic": provider}, env={}),
        checkpointer=JsonFileCheckpointer(tmp_path / "ckpt"),
        workspace_dir=tmp_path / "ws",
    )


async def test_crash_in_step_three_resumes_at_step_three(tmp_path: Path) -> None:
    """After a crash in step 3, the rerun calls the provider for steps 3 and 4 only."""
    loaded = load_pipeline_text(FOUR_STEPS)
    first = FakeProvider(["r1", "r2", ProviderError("boom", code="invalid_request")])
    with pytest.raises(StepFailed) as info:
        await _runner(first, tmp_path).run(loaded, {"x": 1})
    assert info.value.step == "s3" and first.call_count == 3

    second = FakeProvider(["r3", "r4"])
    result = await _runner(second, tmp_path).run(loaded, {"x": 1})
    assert second.call_count == 2
    assert second.prompts()[0] == "three after r2"
    assert result.resumed_at == 2
    assert [result.results[s]["text"] for s in ("s1", "s2", "s3", "s4")] == ["r1", "r2", "r3", "r4"]
    assert not list((tmp_path / "ckpt").glob("*.json")), "a finished run clears its checkpoint"


async def test_checkpoint_is_per_inputs_and_pipeline_version(tmp_path: Path) -> None:
    """Different inputs, or a changed pipeline, start from scratch instead of resuming."""
    loaded = load_pipeline_text(FOUR_STEPS)
    failing = FakeProvider(["r1", "r2", ProviderError("boom", code="invalid_request")])
    with pytest.raises(StepFailed):
        await _runner(failing, tmp_path).run(loaded, {"x": 1})
    other_inputs = FakeProvider(default="ok")
    await _runner(other_inputs, tmp_path).run(loaded, {"x": 2})
    assert other_inputs.call_count == 4
    changed = load_pipeline_text(FOUR_STEPS.replace('"four"', '"four, edited"'))
    fresh = FakeProvider(default="ok")
    await _runner(fresh, tmp_path).run(changed, {"x": 1})
    assert fresh.call_count == 4


async def test_checkpoint_file_is_json_and_atomic(tmp_path: Path) -> None:
    """The checkpoint after a failure is valid JSON with the next step index and results."""
    loaded = load_pipeline_text(FOUR_STEPS)
    with pytest.raises(StepFailed):
        await _runner(FakeProvider(["a", ProviderError("x", code="auth")]), tmp_path).run(
            loaded, {}
        )
    files = list((tmp_path / "ckpt").glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["step_index"] == 1 and data["results"]["s1"]["text"] == "a"
    assert not list((tmp_path / "ckpt").glob(".*tmp"))


async def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    """A corrupt checkpoint file is reported with its path, not a traceback."""
    from pipelines.errors import ConfigError
    from pipelines.runner.checkpoint import run_key

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / f"{run_key('four', {})}.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        await _runner(FakeProvider(default="x"), tmp_path).run(load_pipeline_text(FOUR_STEPS), {})

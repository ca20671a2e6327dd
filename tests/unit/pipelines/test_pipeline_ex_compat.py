"""pipeline_ex-style workflows load and run unchanged (offline and with a fake provider)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.loader import load_pipeline
from pipelines.providers.registry import ProviderRegistry
from pipelines.runner import MemorySessionStore, Runner
from pipelines.testing import FakeProvider

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "pipeline_ex"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixtures run from its own directory, as pipeline_ex runs from cwd."""
    target = tmp_path / "project"
    shutil.copytree(FIXTURES, target)
    (target / "workspace").mkdir()
    (target / "workspace" / "README.md").write_text("# Demo\nA small demo project.\n")
    monkeypatch.chdir(target)
    return target


def _runner(provider: FakeProvider | None = None) -> Runner:
    providers = {"anthropic": provider, "gemini": provider} if provider else {}
    return Runner(providers=ProviderRegistry(providers, env={}), sessions=MemorySessionStore())


# nested_child needs the inputs its parent passes; it runs through nested_parent.
@pytest.mark.parametrize(
    "name", sorted(p.stem for p in FIXTURES.glob("*.yaml") if p.stem != "nested_child")
)
async def test_every_fixture_runs_offline(project: Path, name: str) -> None:
    """Each pipeline_ex-style fixture runs to completion with no key and no network."""
    result = await _runner().run(load_pipeline(project / f"{name}.yaml"))
    assert result.results
    for step_result in result.results.values():
        assert step_result["success"] is True or step_result.get("skipped")


async def test_feature_tour_wires_steps_like_pipeline_ex(project: Path) -> None:
    """defaults.claude_options, extract by task id and function-schema instructor all work."""
    fake = FakeProvider(
        lambda req: (
            '{"score": 7, "summary": "fine"}'
            if req.output_schema
            else f"answer to: {req.prompt_text[:30]}"
        )
    )
    result = await _runner(fake).run(load_pipeline(project / "feature_tour.yaml"))
    results = result.results
    first = fake.requests[0]
    assert "A small demo project." in first.prompt_text
    assert (first.max_tokens, first.temperature, dict(first.extra)) == (
        512,
        0.3,
        {"top_p": 0.9, "top_k": 30},
    )
    summary_request = fake.requests[1]
    assert [t.name for t in summary_request.tools] == ["read_file", "list_files"]
    assert "answer to: Briefly analyze" in summary_request.prompt_text
    assert results["parallel_tasks"]["list_files"]["success"] is True
    final_prompt = next(
        r.prompt_text for r in fake.requests if r.prompt_text.startswith("Create a final report")
    )
    assert "answer to: List the main files" in final_prompt
    assert results["structured_output"]["content"] == {"score": 7, "summary": "fine"}
    assert (project / "outputs" / "analysis.json").exists()


async def test_loops_and_state(project: Path) -> None:
    """set_variable + for_loop + conditions behave as in pipeline_ex (with the loop fix)."""
    fake = FakeProvider(default="ok")
    results = (await _runner(fake).run(load_pipeline(project / "loops_and_state.yaml"))).results
    assert [r.prompt_text for r in fake.requests] == [
        "Review a.ex for team core",
        "Review b.ex for team core",
        "Review c.ex for team core",
    ]
    assert results["report"]["value"] == "reviewed 3 files"
    assert results["skipped_when_nothing"]["skipped"] is True


async def test_nested_pipeline_result_wrapper(project: Path) -> None:
    """A nested pipeline step with inputs returns {result: ...}; outputs rename values."""
    fake = FakeProvider(lambda req: f"assessed: {req.prompt_text}")
    results = (await _runner(fake).run(load_pipeline(project / "nested_parent.yaml"))).results
    assert (
        results["analyze"]["result"]["assessment_text"]
        == "assessed: Assess this code: def f(): pass"
    )
    assert fake.requests[-1].prompt_text == "Child said: assessed: Assess this code: def f(): pass"

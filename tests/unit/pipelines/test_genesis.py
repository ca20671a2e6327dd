"""Genesis: LLM drafts validated and repaired, offline templates that run, saving with DNA."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines import genesis
from pipelines._genesis_templates import KINDS, template
from pipelines.errors import ConfigError, GenesisError
from pipelines.loader import load_pipeline
from pipelines.providers.base import Completion, CompletionRequest
from pipelines.providers.offline import OfflineProvider
from pipelines.providers.registry import ProviderRegistry
from pipelines.runner import MemoryCheckpointer, MemorySessionStore, Runner
from pipelines.testing import FakeProvider, scripted
from store.base import Store
from store.factory import open_store

GOOD: dict[str, Any] = {
    "workflow": {
        "name": "whatever_the_model_said",
        "description": "Summarise a text, then list follow-ups.",
        "version": 1,
        "inputs": {"request": {"type": "string", "required": True}},
        "steps": [
            {
                "name": "summarise",
                "type": "claude",
                "output_schema": {
                    "type": "object",
                    "required": ["summary"],
                    "properties": {"summary": {"type": "string"}},
                },
                "prompt": [{"type": "static", "content": "Summarise: {{inputs.request}}"}],
            },
            {
                "name": "follow_up",
                "type": "claude_smart",
                "preset": "analysis",
                "prompt": [
                    {"type": "static", "content": "Follow-ups for:"},
                    {"type": "previous_response", "step": "summarise", "extract": "summary"},
                ],
            },
        ],
    }
}


def broken_reference() -> dict[str, Any]:
    """GOOD, with the second step reading a step that does not exist."""
    draft = copy.deepcopy(GOOD)
    draft["workflow"]["steps"][1]["prompt"][1]["step"] = "analyse"
    return draft


def missing_prompt() -> dict[str, Any]:
    """GOOD, with the first step's required prompt left out."""
    draft = copy.deepcopy(GOOD)
    del draft["workflow"]["steps"][0]["prompt"]
    return draft


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path}/genesis.db")
    try:
        yield opened
    finally:
        await opened.close()


async def test_valid_first_draft_takes_one_round() -> None:
    """A valid draft is accepted as is; the request carries the Genesis schema; name is forced."""
    fake = scripted(json.dumps(GOOD), name="fake")
    result = await genesis.generate_pipeline("Summarise a text", fake, name="summary")
    assert result.rounds == 1 and result.drafted_by == "llm"
    assert result.pipeline.name == "summary" and result.name == "summary"
    assert result.round_errors == [[]]
    request = fake.requests[0]
    assert request.output_schema == genesis.GENESIS_SCHEMA
    assert request.system is not None and "pipeline_ex" in request.system
    assert "Summarise a text" in request.prompt_text


async def test_broken_first_draft_is_repaired_with_the_validator_errors() -> None:
    """Round 2's prompt holds the loader's error and the draft; the repaired pipeline validates."""
    fake = scripted(json.dumps(broken_reference()), json.dumps(GOOD), name="fake")
    seen: list[genesis.GenesisRound] = []
    result = await genesis.generate_pipeline(
        "Summarise a text", fake, name="summary", on_round=seen.append
    )
    assert result.rounds == 2 and fake.call_count == 2
    (error,) = result.round_errors[0]
    assert "reference to a missing step 'analyse'" in error and "summary.yaml" in error
    repair = fake.prompts()[1]
    assert error in repair
    assert "step: analyse" in repair  # the broken draft, as YAML
    assert result.round_errors[1] == []
    assert [r.number for r in seen] == [1, 2] and seen[0].errors == (error,)
    assert [s.name for s in result.pipeline.workflow.steps] == ["summarise", "follow_up"]


async def test_missing_required_key_is_repaired_within_three_repairs() -> None:
    """Several bad drafts (missing key, not JSON, unknown tool) are repaired by round 4."""
    unknown_tool = copy.deepcopy(GOOD)
    unknown_tool["workflow"]["steps"].append({"name": "lint", "type": "tool", "tool": "pylint"})
    fake = scripted(
        json.dumps(missing_prompt()),
        "Sure! Here is the pipeline you asked for.",
        json.dumps(unknown_tool),
        json.dumps(GOOD),
    )
    result = await genesis.generate_pipeline("Summarise a text", fake, name="summary")
    assert result.rounds == 4
    first, second, third, fourth = result.round_errors
    assert any("missing required key 'prompt'" in e for e in first)
    assert second == ['the answer must be a JSON object {"workflow": {...}}']
    assert any("unknown tool 'pylint'" in e for e in third)
    assert fourth == []
    assert "missing required key 'prompt'" in fake.prompts()[1]


async def test_draft_that_never_validates_raises_after_one_plus_three_rounds() -> None:
    """Four invalid drafts raise GenesisError listing the last errors; no fifth call is made."""
    fake = FakeProvider(lambda request: json.dumps(broken_reference()))
    with pytest.raises(GenesisError) as info:
        await genesis.generate_pipeline("Summarise a text", fake, name="summary")
    assert fake.call_count == 4
    assert info.value.rounds == 4
    assert isinstance(info.value, ConfigError)
    assert "no valid pipeline after 4 rounds" in str(info.value)
    assert "reference to a missing step 'analyse'" in str(info.value)
    assert info.value.errors and "analyse" in info.value.errors[0]


async def test_max_repairs_zero_allows_only_the_first_draft() -> None:
    """max_repairs=0: one draft, and its errors are the error's errors."""
    fake = FakeProvider(lambda request: json.dumps(missing_prompt()))
    with pytest.raises(GenesisError, match="missing required key 'prompt'"):
        await genesis.generate_pipeline("x", fake, name="x", max_repairs=0)
    assert fake.call_count == 1


async def test_undeclared_input_is_an_error_to_repair() -> None:
    """A template naming an input the workflow does not declare is sent back for repair."""
    draft = copy.deepcopy(GOOD)
    draft["workflow"]["steps"][0]["prompt"][0]["content"] = "Summarise {{inputs.text}}"
    fake = scripted(json.dumps(draft), json.dumps(GOOD))
    result = await genesis.generate_pipeline("Summarise", fake, name="s")
    (error,) = result.round_errors[0]
    assert "undeclared inputs ['text']" in error and "'summarise'" in error
    assert error in fake.prompts()[1]


async def test_bare_workflow_and_fenced_json_are_accepted() -> None:
    """A workflow without the root key, in a ```json fence, is wrapped, not sent back."""
    fenced = "```json\n" + json.dumps(GOOD["workflow"]) + "\n```"
    fake = scripted(fenced)
    result = await genesis.generate_pipeline("Summarise", fake, name="s")
    assert result.rounds == 1 and result.pipeline.name == "s"


async def test_empty_request_is_a_config_error() -> None:
    """An empty request is refused before any provider call."""
    fake = scripted()
    with pytest.raises(ConfigError, match="request is empty"):
        await genesis.generate_pipeline("   ", fake)
    assert fake.call_count == 0


async def test_offline_provider_builds_from_a_template_without_calling_it() -> None:
    """The offline provider is never asked to draft: the template for the type is used."""
    result = await genesis.generate_pipeline("Plan the migration to Postgres", OfflineProvider())
    assert result.drafted_by == "template" and result.kind == "planning"
    assert result.name == "plan_the_migration_to_postgres"
    assert result.rounds == 1 and result.provider == "offline"
    assert result.yaml_text.startswith("# Generated by `elexirion generate`")


async def test_chain_that_fell_back_to_offline_uses_the_template() -> None:
    """A completion answered by offline (fallback) is not taken as a draft."""

    def answer(request: CompletionRequest) -> Completion:
        return Completion(text="{}", provider="offline", model="offline-extractive-1", data={})

    fake = FakeProvider(answer, name="anthropic")
    result = await genesis.generate_pipeline("deploy the api to production", fake)
    assert fake.call_count == 1
    assert result.drafted_by == "template" and result.kind == "deployment"


@pytest.mark.parametrize(
    ("request_text", "kind"),
    [
        ("Audit the payment module for security bugs", "analysis"),
        ("Refactor the config loader to remove dead code", "refactoring"),
        ("Write pytest tests for the parser", "testing"),
        ("Plan the roadmap for the v2 milestone", "planning"),
        ("Implement a function that parses ISO dates", "code"),
        ("Roll out the new billing service with a canary", "deployment"),
        ("What is the capital of France?", "general"),
    ],
)
async def test_offline_template_validates_and_runs(
    request_text: str, kind: str, tmp_path: Path
) -> None:
    """Each request type gives a valid pipeline that runs end to end on the offline provider."""
    result = await genesis.generate_pipeline(request_text, OfflineProvider())
    assert result.kind == kind
    project = tmp_path / "project"
    project.mkdir()
    (project / "mod.py").write_text("import os\n\ndef add(a, b):\n    return a + b\n")
    inputs: dict[str, Any] = {"request": request_text}
    declared = result.pipeline.workflow.inputs
    if "project_dir" in declared:
        inputs["project_dir"] = str(project)
    if "module" in declared:
        inputs["module"] = "mod.py"
    runner = Runner(
        providers=ProviderRegistry(env={}),
        checkpointer=MemoryCheckpointer(),
        sessions=MemorySessionStore(),
        output_dir=tmp_path / "out",
    )
    run = await runner.run(result.pipeline, inputs)
    assert list(run.results) == [s.name for s in result.pipeline.workflow.steps]
    for step_result in run.results.values():
        assert step_result["success"] is True
        assert step_result.get("provider", "offline") == "offline"


@pytest.mark.parametrize("kind", KINDS)
def test_templates_fit_the_genesis_schema(kind: str) -> None:
    """Every template is a document the Genesis schema accepts (the schema is not too tight)."""
    document = template(kind, "do {{something}} useful", "t")
    jsonschema.Draft202012Validator(genesis.GENESIS_SCHEMA).validate(document)
    assert "{{something}}" not in json.dumps(document)


def test_genesis_schema_is_a_valid_json_schema() -> None:
    """The structured-output schema is itself valid JSON Schema, and small."""
    jsonschema.Draft202012Validator.check_schema(genesis.GENESIS_SCHEMA)
    assert len(json.dumps(genesis.GENESIS_SCHEMA)) < 10_000


def test_slugify_makes_pipeline_names() -> None:
    """Slugs are lower-case snake_case starting with a letter, with a fallback."""
    assert genesis.slugify("Review the API, please!") == "review_the_api_please"
    assert genesis.slugify("2024 roadmap") == "p_2024_roadmap"
    assert genesis.slugify("!!!") == "generated_pipeline"
    assert len(genesis.slugify("word " * 40)) <= 48


def test_genesis_error_pickles_with_its_fields() -> None:
    """GenesisError keeps message, rounds and errors through pickle."""
    exc = GenesisError("no valid pipeline", rounds=4, errors=["a.yaml:3: bad"])
    copy_ = pickle.loads(pickle.dumps(exc))
    assert type(copy_) is GenesisError and str(copy_) == str(exc)
    assert copy_.__dict__ == exc.__dict__
    assert "a.yaml:3: bad" in str(exc)


async def test_save_generated_writes_file_and_genesis_dna(tmp_path: Path, store: Store) -> None:
    """The file lands in the library and loads; version 1 has origin genesis, generation 0."""
    result = await genesis.generate_pipeline("Write pytest tests for x", OfflineProvider())
    saved = await genesis.save_generated(result, tmp_path / "lib", store)
    assert saved.path == tmp_path / "lib" / f"{result.name}.yaml"
    assert saved.path.read_text() == result.yaml_text
    assert load_pipeline(saved.path).name == result.name
    assert saved.version.version == 1
    assert saved.version.dna.origin == "genesis" and saved.version.dna.generation == 0
    assert [v.yaml_text for v in await store.pipeline_versions(result.name)] == [result.yaml_text]


async def test_save_generated_never_overwrites(tmp_path: Path, store: Store) -> None:
    """A taken name (file, built-in pipeline) gets a numeric suffix in file and workflow."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "notes.yaml").write_text("# someone else's file\n")
    result = await genesis.generate_pipeline("take notes", OfflineProvider(), name="notes")
    saved = await genesis.save_generated(result, lib, store)
    assert saved.name == "notes_2" and saved.path == lib / "notes_2.yaml"
    assert (lib / "notes.yaml").read_text() == "# someone else's file\n"
    assert load_pipeline(saved.path).name == "notes_2"
    assert yaml.safe_load(saved.path.read_text())["workflow"]["name"] == "notes_2"
    assert saved.path.read_text().startswith("# Generated by")
    builtin = await genesis.generate_pipeline("plan", OfflineProvider(), name="planning")
    assert (await genesis.save_generated(builtin, lib, store)).name == "planning_2"
    again = await genesis.save_generated(result, lib, store)
    assert again.name == "notes_3"


async def test_save_generated_with_parents_continues_the_lineage(
    tmp_path: Path, store: Store
) -> None:
    """A pipeline derived from others records them as parents, one generation later."""
    result = await genesis.generate_pipeline("plan things", OfflineProvider(), name="p")
    first = await genesis.save_generated(result, tmp_path, store)
    derived = await genesis.generate_pipeline("plan more", OfflineProvider(), name="q")
    second = await genesis.save_generated(derived, tmp_path, store, parents=[first.version.dna])
    assert second.version.dna.parents == [first.version.dna.id]
    assert second.version.dna.generation == 1 and second.version.dna.origin == "genesis"

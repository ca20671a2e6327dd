"""The offline provider: deterministic, labelled, and it never drops a finding."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from pipelines.errors import ProviderError
from pipelines.providers.base import CompletionRequest, Message, Provider, ToolSpec, Usage
from pipelines.providers.offline import (
    DEFAULT_MODEL,
    MARKER,
    Finding,
    OfflineProvider,
    extract_findings,
    word_chunks,
)

LINE_FINDINGS = [
    "src/app.py:12:5: BLE001 Do not catch blind exception: `Exception`",
    "src/db.py:40: E501 Line too long (120 > 100)",
    "- lib/util.py:3 broad-except Catching too general exception Exception",
    'src/types.py:8: error: Name "foo" is not defined  [name-defined]',
    "tests/test_x.py:99 assert used",
]
JSON_FINDINGS: list[dict[str, Any]] = [
    {"file": "src/auth.py", "line": 7, "rule": "S105", "message": "Possible hardcoded password"},
    {"file": "pkg/mod.py", "line": 21, "rule": "F401", "message": "os imported but unused"},
]
PROMPT = "\n".join(
    [
        "# Static analysis of sample_project",
        "",
        "Review the findings below. The project is a small CLI tool.",
        "",
        "## Notes",
        "- keep the public API",
        "* performance is fine",
        "1. start with security",
        "",
        "```text",
        *LINE_FINDINGS,
        "```",
        json.dumps({"findings": JSON_FINDINGS[:1]}),
        json.dumps(JSON_FINDINGS[1:]),
        # ruff's own JSON shape: filename + location.row
        json.dumps({"filename": "x/y.py", "location": {"row": 9, "column": 1}, "code": "F841"}),
    ]
)
EXPECTED_LOCATIONS = [
    "src/app.py:12",
    "src/db.py:40",
    "lib/util.py:3",
    "src/types.py:8",
    "tests/test_x.py:99",
    "src/auth.py:7",
    "pkg/mod.py:21",
    "x/y.py:9",
]
CODE_ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "file": {"type": "string"},
                    "line": {"type": "integer", "minimum": 1},
                    "severity": {"type": "string", "enum": ["low", "medium", "high"]},
                    "message": {"type": "string"},
                },
                "required": ["file", "line", "severity", "message"],
                "additionalProperties": False,
            },
        },
        "recommendations": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["summary", "findings", "recommendations"],
    "additionalProperties": False,
}


async def complete(prompt: str = PROMPT, **kwargs: Any) -> Any:
    return await OfflineProvider().complete(CompletionRequest.from_prompt(prompt, **kwargs))


def test_offline_is_a_provider() -> None:
    """OfflineProvider satisfies the Provider protocol under the name 'offline'."""
    provider = OfflineProvider()
    assert isinstance(provider, Provider)
    assert provider.name == "offline"


async def test_text_starts_with_the_marker() -> None:
    """The answer says what it is before anything else."""
    completion = await complete()
    assert completion.text.startswith(MARKER)
    assert "no LLM was called" in completion.text
    assert completion.provider == "offline"
    assert completion.model == DEFAULT_MODEL
    assert (completion.cost_usd, completion.finish_reason) == (0.0, "stop")


async def test_same_request_same_completion() -> None:
    """Two calls with the same request agree on everything but latency."""
    first, second = await complete(), await complete()
    assert (first.text, first.usage, first.data) == (second.text, second.usage, second.data)
    assert first.latency_ms >= 0


async def test_usage_is_a_deterministic_word_estimate() -> None:
    """Usage is ceil(words * 4/3) of prompt and answer."""
    completion = await complete("one two three", system="sys")
    assert completion.usage == Usage(
        input_tokens=6, output_tokens=-(-len(completion.text.split()) * 4 // 3)
    )


async def test_every_finding_is_listed_with_file_and_line() -> None:
    """Every finding line and JSON finding in the prompt appears with file:line."""
    text = (await complete()).text
    for location in EXPECTED_LOCATIONS:
        assert location in text, location
    for finding in JSON_FINDINGS:
        assert f"{finding['file']}:{finding['line']} {finding['rule']} {finding['message']}" in text
    assert "Findings, all of them (8):" in text


async def test_many_findings_are_never_truncated() -> None:
    """Hundreds of findings are all listed: findings are exempt from section caps."""
    lines = [f"pkg/m{i}.py:{i + 1}: E501 Line too long" for i in range(300)]
    text = (await complete("\n".join(lines))).text
    assert all(f"pkg/m{i}.py:{i + 1} E501" in text for i in range(300))


async def test_structure_is_extracted() -> None:
    """Headings, bullets, a lead and top keywords come from the prompt."""
    text = (await complete()).text
    assert "- Static analysis of sample_project" in text
    assert "- keep the public API" in text
    assert "Lead: Review the findings below." in text
    assert "Summary:" in text
    assert "top keywords:" in text


async def test_recommendations_are_rule_based_and_labelled() -> None:
    """Advice comes only from the rule table, keyed on rule ids/keywords, and says so."""
    text = (await complete()).text
    assert "Rule-based recommendations" in text
    assert "[rule-based] catch specific exceptions" in text
    assert "src/app.py:12" in text.split("catch specific exceptions", 1)[1].splitlines()[0]
    quiet = (await complete("Just a paragraph about nothing in particular.")).text
    assert "[rule-based]" not in quiet
    assert "Findings: none in the prompt." in quiet


async def test_tools_are_never_called() -> None:
    """With tools offered the answer stops without tool calls and names the tools."""
    tool = ToolSpec("read_file", "Read a file", {"type": "object"})
    completion = await complete(tools=(tool,))
    assert completion.tool_calls == ()
    assert completion.finish_reason == "stop"
    assert "not called" in completion.text
    assert "read_file" in completion.text


async def test_code_analysis_schema_output_lists_every_finding() -> None:
    """The code-analysis schema gets valid data holding every finding with file and line."""
    completion = await complete(output_schema=CODE_ANALYSIS_SCHEMA)
    jsonschema.validate(completion.data, CODE_ANALYSIS_SCHEMA)
    assert json.loads(completion.text) == completion.data
    found = [f"{f['file']}:{f['line']}" for f in completion.data["findings"]]
    assert found == EXPECTED_LOCATIONS
    assert completion.data["summary"].startswith(MARKER)
    assert all(r.startswith("[rule-based]") for r in completion.data["recommendations"])
    messages = {f["message"] for f in completion.data["findings"]}
    assert "S105: Possible hardcoded password" in messages  # no rule field: id kept in message


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
    {"type": "array", "items": {"type": "integer", "minimum": 3}, "minItems": 2},
    {"type": "string", "maxLength": 10},
    {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "issues": {"type": "array", "items": {"type": "string"}, "maxItems": 50},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
        "required": ["title", "issues", "score"],
    },
    {
        "$defs": {
            "finding": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "lineno": {"type": "integer"},
                    "rule_id": {"type": "string", "minLength": 1},
                    "level": {"enum": ["error", "warning", "info"]},
                },
                "required": ["path", "lineno", "rule_id", "level"],
            }
        },
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/finding"}}},
        "required": ["items"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: str(s.get("type", "ref")))
async def test_schema_output_validates(schema: dict[str, Any]) -> None:
    """For each schema the data validates and the text is its JSON."""
    completion = await complete(output_schema=schema)
    jsonschema.validate(completion.data, schema)
    assert json.loads(completion.text) == completion.data


async def test_findings_fill_differently_named_item_schemas() -> None:
    """Item schemas naming fields path/lineno/rule_id/level still get every finding."""
    completion = await complete(output_schema=SCHEMAS[4])
    items = completion.data["items"]
    assert [f"{i['path']}:{i['lineno']}" for i in items] == EXPECTED_LOCATIONS
    assert items[0]["rule_id"] == "BLE001"
    assert items[3]["level"] == "error"  # mypy said error
    string_issues = (await complete(output_schema=SCHEMAS[3])).data["issues"]
    assert len(string_issues) == 8
    assert string_issues[0].startswith("src/app.py:12")


async def test_unsatisfiable_schema_raises_invalid_request() -> None:
    """A schema no value satisfies raises ProviderError(invalid_request) naming offline."""
    with pytest.raises(ProviderError) as info:
        await complete(output_schema={"type": "integer", "minimum": 5, "maximum": 1})
    assert info.value.code == "invalid_request"
    assert info.value.provider == "offline"
    assert not info.value.retryable


async def test_stream_deltas_join_to_the_completion_text() -> None:
    """stream() yields word deltas whose concatenation equals complete()'s text."""
    request = CompletionRequest.from_prompt(PROMPT)
    provider = OfflineProvider()
    events = [event async for event in provider.stream(request)]
    final = events[-1].completion
    assert final is not None
    assert all(e.completion is None for e in events[:-1])
    assert "".join(e.delta for e in events[:-1]) == final.text
    assert final.text == (await provider.complete(request)).text


def test_word_chunks_reassemble_exactly() -> None:
    """word_chunks keeps every whitespace character, leading and trailing included."""
    for text in ("", "   ", " a  b\n\nc\t", "one"):
        assert "".join(word_chunks(text)) == text


def test_extract_findings_parses_a_linter_line() -> None:
    """A `path:line RULE message` line becomes a Finding with those fields."""
    finding = "src/a.py:1 E501 long"
    assert extract_findings(finding) == [Finding("src/a.py", 1, "E501", "long")]


async def test_system_prompt_examples_are_not_findings() -> None:
    """An example finding in the system prompt is not reported as a real one."""
    request = CompletionRequest(
        messages=(Message("user", "No problems here."),),
        system="Format findings like src/example.py:1 E000 example",
    )
    text = (await OfflineProvider().complete(request)).text
    assert "example.py" not in text
    only_system = CompletionRequest(messages=(), system="src/s.py:4 E501 long")
    assert "src/s.py:4" in (await OfflineProvider().complete(only_system)).text


def test_extract_findings_dedupes_exact_repeats_only() -> None:
    """The same finding twice is listed once; same place, different rule, twice."""
    text = "a.py:1 E1 x\na.py:1 E1 x\na.py:1 E2 x\n"
    assert [f.rule for f in extract_findings(text)] == ["E1", "E2"]

"""What Genesis asks a model for: the common subset of the pipeline format, and its rules.

The full schema (:func:`pipelines.spec.json_schema`) is over 130 kB with 50
definitions: too large for a structured-output request and full of keys a new
pipeline never needs. This subset (workflow name, description, version, inputs,
defaults and steps of types claude, claude_smart, claude_extract, gemini and tool,
with static and previous_response prompt parts) is strict: every document it
accepts has the shape the real loader expects, and the loader stays the judge.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GENESIS_SCHEMA", "GENESIS_STEP_TYPES", "SYSTEM_PROMPT", "TOOLS"]

#: Tools a generated pipeline may run (the default tool registry).
TOOLS = ("static_analysis", "read_file", "list_files", "search", "run_tests")
GENESIS_STEP_TYPES = ("claude", "claude_smart", "claude_extract", "gemini", "tool")

_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 60}
_PRESET = {"enum": ["development", "production", "analysis", "chat", "test"]}

_COMMON: dict[str, Any] = {
    "name": _NAME,
    "description": {"type": "string"},
    "condition": {"type": "string", "description": 'e.g. "inputs.run_tests"'},
    "output_schema": {
        "type": "object",
        "description": "JSON Schema the step's result must satisfy (type: object).",
    },
}

_PROMPT: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "anyOf": [
            {
                "type": "object",
                "required": ["type", "content"],
                "additionalProperties": False,
                "properties": {"type": {"const": "static"}, "content": {"type": "string"}},
            },
            {
                "type": "object",
                "required": ["type", "step"],
                "additionalProperties": False,
                "properties": {
                    "type": {"const": "previous_response"},
                    "step": _NAME,
                    "extract": {"type": "string", "description": "a.b.c path in the result"},
                },
            },
        ]
    },
}

_CLAUDE_OPTIONS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_turns": {"type": "integer", "minimum": 1, "maximum": 10},
        "system_prompt": {"type": "string"},
        "allowed_tools": {"type": "array", "items": {"enum": list(TOOLS)}},
    },
}


def _step(kind: str, required: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "type", *required],
        "additionalProperties": False,
        "properties": {"type": {"const": kind}, **_COMMON, **extra},
    }


_STEPS: list[dict[str, Any]] = [
    _step("claude", ["prompt"], prompt=_PROMPT, claude_options=_CLAUDE_OPTIONS),
    _step(
        "claude_smart", ["prompt"], prompt=_PROMPT, claude_options=_CLAUDE_OPTIONS, preset=_PRESET
    ),
    _step(
        "claude_extract",
        ["prompt"],
        prompt=_PROMPT,
        claude_options=_CLAUDE_OPTIONS,
        extraction_config={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "format": {"enum": ["text", "json", "structured", "summary", "markdown"]},
                "post_processing": {
                    "type": "array",
                    "items": {
                        "enum": [
                            "extract_code_blocks",
                            "extract_recommendations",
                            "extract_links",
                            "extract_key_points",
                            "generate_summary",
                        ]
                    },
                },
            },
        },
    ),
    _step("gemini", ["prompt"], prompt=_PROMPT, model={"type": "string"}),
    _step(
        "tool",
        ["tool"],
        tool={"enum": list(TOOLS)},
        args={"type": "object", "description": "the tool's arguments; values may be templates"},
    ),
]

GENESIS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Elexirion pipeline (Genesis subset)",
    "type": "object",
    "required": ["workflow"],
    "additionalProperties": False,
    "properties": {
        "workflow": {
            "type": "object",
            "required": ["name", "description", "inputs", "steps"],
            "additionalProperties": False,
            "properties": {
                "name": _NAME,
                "description": {"type": "string"},
                "version": {"type": "integer", "minimum": 1},
                "workspace_dir": {"type": "string"},
                "defaults": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"claude_preset": _PRESET},
                },
                "inputs": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "type": {
                                "enum": [
                                    "string",
                                    "integer",
                                    "number",
                                    "boolean",
                                    "array",
                                    "object",
                                ]
                            },
                            "required": {"type": "boolean"},
                            "default": {},
                            "description": {"type": "string"},
                        },
                    },
                },
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 8,
                    "items": {"anyOf": _STEPS},
                },
            },
        }
    },
}

#: The instructions sent with every draft request: the subset's rules and one example.
SYSTEM_PROMPT = """\
You design pipelines for Elexirion, whose YAML format is pipeline_ex's. Answer with one
JSON object, {"workflow": {...}}, valid against the given JSON Schema.
Rules:
- workflow: name (snake_case), description, version 1, inputs, steps (1 to 8).
- inputs: {input_name: {type, required or default, description}}; declare every input
  the steps use. Most pipelines take `request` (string, required) and `context`
  (string, default "").
- Step names are unique snake_case. Types: claude (one model call), claude_smart (with
  preset development|production|analysis|chat|test), claude_extract (with
  extraction_config), gemini, tool (tool: static_analysis|read_file|list_files|search|
  run_tests, args: {...}).
- prompt is a list of parts: {type: static, content: "text with {{inputs.x}}"} or
  {type: previous_response, step: an_earlier_step, extract: a.b}.
- Templates {{...}} may name only declared inputs (inputs.x) and earlier steps
  (steps.name.field); conditions are expressions like "inputs.run_tests".
- Give LLM steps whose result is used later an output_schema (a JSON Schema object).
- A tool step that reads files sets workflow.workspace_dir: "{{inputs.project_dir}}"
  and declares project_dir (default ".").
Example:
{"workflow": {"name": "summarise", "description": "Summarise a text.", "version": 1,
  "inputs": {"request": {"type": "string", "required": true}},
  "steps": [{"name": "summary", "type": "claude",
    "output_schema": {"type": "object", "required": ["summary"],
                      "properties": {"summary": {"type": "string"}}},
    "prompt": [{"type": "static", "content": "Summarise: {{inputs.request}}"}]}]}}
"""

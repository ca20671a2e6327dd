"""Pydantic models of the pipeline format (PIPELINE_FORMAT.md), and its JSON Schema.

Load documents with :func:`pipelines.loader.load_pipeline`, which turns validation
errors into :class:`pipelines.errors.SpecError` naming file, line, step and key.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.spec._base import PromptPart, PromptSpec, RetrySpec, StepBase, StrictModel
from pipelines.spec.control import (
    DataTransformStep,
    FileOpsStep,
    ForLoopStep,
    OutputMapping,
    PipelineStep,
    SetVariableStep,
    TestEchoStep,
    ToolStep,
    WhileLoopStep,
)
from pipelines.spec.llm import (
    ClaudeBatchStep,
    ClaudeExtractStep,
    ClaudeOptions,
    ClaudeRobustStep,
    ClaudeSessionStep,
    ClaudeSmartStep,
    ClaudeStep,
    GeminiInstructorStep,
    GeminiStep,
    LlmStep,
    ParallelClaudeStep,
)
from pipelines.spec.workflow import (
    STEP_TYPES,
    Defaults,
    InputSpec,
    PipelineDocument,
    Step,
    Workflow,
    iter_steps,
)

__all__ = [
    "STEP_TYPES",
    "ClaudeBatchStep",
    "ClaudeExtractStep",
    "ClaudeOptions",
    "ClaudeRobustStep",
    "ClaudeSessionStep",
    "ClaudeSmartStep",
    "ClaudeStep",
    "DataTransformStep",
    "Defaults",
    "FileOpsStep",
    "ForLoopStep",
    "GeminiInstructorStep",
    "GeminiStep",
    "InputSpec",
    "LlmStep",
    "OutputMapping",
    "ParallelClaudeStep",
    "PipelineDocument",
    "PipelineStep",
    "PromptPart",
    "PromptSpec",
    "RetrySpec",
    "SetVariableStep",
    "Step",
    "StepBase",
    "StrictModel",
    "TestEchoStep",
    "ToolStep",
    "WhileLoopStep",
    "Workflow",
    "iter_steps",
    "json_schema",
]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a pipeline document, for editors and for Genesis."""
    schema = PipelineDocument.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Elexirion pipeline (pipeline_ex-compatible)"
    return schema


def json_schema_text() -> str:
    """:func:`json_schema` as indented JSON."""
    return json.dumps(json_schema(), indent=2, sort_keys=True)

"""The root of a pipeline document: ``workflow:`` with its defaults, inputs and steps.

``Step`` is the discriminated union of every step type, keyed on ``type``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from pipelines.spec._base import JsonSchema, StepBase, StrictModel
from pipelines.spec.control import (
    DataTransformStep,
    FileOpsStep,
    ForLoopStep,
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
    Preset,
    TokenBudget,
)

__all__ = [
    "STEP_TYPES",
    "Defaults",
    "InputSpec",
    "PipelineDocument",
    "Step",
    "Workflow",
    "iter_steps",
]

Step = Annotated[
    ClaudeStep
    | GeminiStep
    | LlmStep
    | ClaudeSmartStep
    | ClaudeSessionStep
    | ClaudeExtractStep
    | ClaudeBatchStep
    | ClaudeRobustStep
    | ParallelClaudeStep
    | GeminiInstructorStep
    | SetVariableStep
    | ForLoopStep
    | WhileLoopStep
    | DataTransformStep
    | FileOpsStep
    | PipelineStep
    | ToolStep
    | TestEchoStep,
    Field(discriminator="type"),
]

STEP_TYPES: tuple[str, ...] = (
    "claude",
    "gemini",
    "llm",
    "claude_smart",
    "claude_session",
    "claude_extract",
    "claude_batch",
    "claude_robust",
    "parallel_claude",
    "gemini_instructor",
    "set_variable",
    "for_loop",
    "while_loop",
    "data_transform",
    "file_ops",
    "pipeline",
    "tool",
    "test_echo",
)


class Defaults(StrictModel):
    """Values every step inherits unless it sets its own (fix: always applied)."""

    provider: str | None = None  # ours
    model: str | None = None  # ours
    fallback: list[str] | None = None  # ours: provider chain after a step's own provider
    claude_model: str | None = None  # ours
    gemini_model: str | None = None
    claude_preset: Preset | None = None
    claude_options: ClaudeOptions | None = None
    gemini_token_budget: TokenBudget | None = None
    claude_output_format: Literal["text", "json", "stream_json", "stream-json"] | None = None
    output_dir: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)
    retry_on_error: bool = False
    continue_on_error: bool = False
    max_tokens: int | None = Field(default=None, gt=0)  # ours
    temperature: float | None = Field(default=None, ge=0, le=2)  # ours


class InputSpec(StrictModel):
    """A declared input (ours): type-checked and defaulted before the run starts."""

    type: Literal["string", "integer", "number", "boolean", "array", "object", "any"] = "any"
    required: bool = False
    default: Any = None
    description: str | None = None


class GeminiFunction(StrictModel):
    """A function Gemini may call, declared once at the root."""

    description: str = ""
    parameters: JsonSchema = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ClaudeAuth(StrictModel):
    """pipeline_ex's authentication block (accepted; keys come from configuration)."""

    auto_check: bool = False
    provider: Literal["anthropic", "aws_bedrock", "google_vertex"] = "anthropic"
    fallback_mock: bool = False
    diagnostics: bool = False


class CostAlerts(StrictModel):
    enabled: bool = False
    threshold_usd: float | None = None
    notify_on_exceed: bool = False


class Environment(StrictModel):
    """pipeline_ex's environment block; ``mode`` picks the claude_smart preset."""

    mode: Literal["development", "production", "test"] = "development"
    debug_level: Literal["basic", "detailed", "performance"] = "basic"
    cost_alerts: CostAlerts | None = None
    allow_mock_providers: bool = False


class ResourceLimits(StrictModel):
    """Run-wide caps; ``max_total_steps`` and ``max_nesting_depth`` are enforced."""

    max_total_steps: int | None = Field(default=None, ge=1)
    max_memory_mb: int | None = None
    max_execution_time_s: float | None = Field(default=None, gt=0)
    max_nesting_depth: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, ge=0)


class Safety(StrictModel):
    """pipeline_ex's safety block; the sandbox is always on here."""

    sandbox_mode: bool = True
    allowed_paths: list[str] = Field(default_factory=list)
    max_file_operations: int | None = None
    detect_circular_deps: bool = True


class Workflow(StrictModel):
    """A pipeline: named, versioned, with defaults, declared inputs and steps."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    version: int | str | None = None
    workspace_dir: str = "./workspace"
    checkpoint_enabled: bool = False
    checkpoint_dir: str | None = None
    output_dir: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    global_vars: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    gemini_functions: dict[str, GeminiFunction] = Field(default_factory=dict)
    claude_auth: ClaudeAuth | None = None
    environment: Environment | None = None
    resource_limits: ResourceLimits | None = None
    safety: Safety | None = None
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_step_names(self) -> Workflow:
        seen: set[str] = set()
        for step in iter_steps(self.steps):
            if step.name in seen:
                msg = f"duplicate step name {step.name!r}: step names are unique in a workflow"
                raise ValueError(msg)
            seen.add(step.name)
        return self

    @model_validator(mode="after")
    def _functions_declared(self) -> Workflow:
        for step in iter_steps(self.steps):
            if isinstance(step, GeminiStep | GeminiInstructorStep):
                unknown = [f for f in step.functions if f not in self.gemini_functions]
                if unknown:
                    msg = (
                        f"step {step.name!r} names functions {unknown} that the root "
                        "'gemini_functions' does not declare"
                    )
                    raise ValueError(msg)
        return self


def iter_steps(steps: Sequence[StepBase]) -> Iterator[StepBase]:
    """Yield every step, loop bodies included (not the inside of nested pipelines)."""
    for step in steps:
        yield step
        if isinstance(step, ForLoopStep | WhileLoopStep):
            yield from iter_steps(step.steps)


class PipelineDocument(StrictModel):
    """A YAML file: exactly one root key, ``workflow``."""

    workflow: Workflow


ForLoopStep.model_rebuild()
WhileLoopStep.model_rebuild()
PipelineStep.model_rebuild()
Workflow.model_rebuild()
PipelineDocument.model_rebuild()

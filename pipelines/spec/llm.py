"""Spec models of the LLM step types (claude*, gemini*, llm, parallel_claude).

Keys follow pipeline_ex so its workflows load unchanged; keys marked *ours* are
Elexirion additions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipelines.spec._base import (
    Condition,
    JsonSchema,
    PromptSpec,
    StepBase,
    StrictModel,
    check_json_schema,
)

__all__ = [
    "POST_PROCESSORS",
    "PRESETS",
    "BatchTask",
    "ClaudeBatchStep",
    "ClaudeExtractStep",
    "ClaudeOptions",
    "ClaudeRobustStep",
    "ClaudeSessionStep",
    "ClaudeSmartStep",
    "ClaudeStep",
    "GeminiInstructorStep",
    "GeminiStep",
    "LlmStep",
    "LlmStepBase",
    "ParallelClaudeStep",
    "ParallelTask",
    "TokenBudget",
]

PRESETS = ("development", "production", "analysis", "chat", "test")
Preset = Literal["development", "production", "analysis", "chat", "test"]
POST_PROCESSORS = (
    "extract_code_blocks",
    "extract_recommendations",
    "extract_links",
    "extract_key_points",
    "generate_summary",
)


class PipelineExRetryConfig(StrictModel):
    """pipeline_ex's retry block inside ``claude_options``."""

    max_retries: int = Field(default=0, ge=0, le=20)
    backoff_strategy: Literal["exponential", "linear", "fixed"] = "exponential"
    retry_on: list[str] = Field(default_factory=list)
    base_delay_ms: int = Field(default=1000, ge=0)


class ClaudeOptions(StrictModel):
    """Options of a Claude call (pipeline_ex ``claude_options``)."""

    model: str | None = None
    fallback_model: str | None = None
    max_turns: int = Field(default=1, ge=1, le=100)
    output_format: Literal["text", "json", "stream_json", "stream-json"] = "text"
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] = Field(default_factory=list)
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    timeout_ms: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)  # ours
    temperature: float | None = Field(default=None, ge=0, le=2)  # ours
    # pipeline_ex keys accepted for compatibility; informational here.
    cwd: str | None = None
    print_: bool = Field(default=False, alias="print")
    verbose: bool = False
    session_id: str | None = None
    resume_session: bool = False
    debug_mode: bool = False
    telemetry_enabled: bool = True
    cost_tracking: bool = True
    retry_config: PipelineExRetryConfig | None = None


class TokenBudget(StrictModel):
    """Gemini sampling limits (pipeline_ex ``token_budget``)."""

    max_output_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=1)


class LlmStepBase(StepBase):
    """Keys every LLM step has: ``fallback`` (ours) overrides the provider chain
    tried after the step's own provider fails, e.g. ``[gemini, offline]``."""

    fallback: list[str] | None = None


class _ClaudeBase(LlmStepBase):
    prompt: PromptSpec
    claude_options: ClaudeOptions = Field(default_factory=ClaudeOptions)


class ClaudeStep(_ClaudeBase):
    """One Claude call; ``max_turns > 1`` with ``allowed_tools`` runs a tool-use loop."""

    type: Literal["claude"]


class ClaudeSmartStep(_ClaudeBase):
    """A Claude call configured by a preset (step → defaults → environment → development)."""

    type: Literal["claude_smart"]
    preset: Preset | None = None
    environment_aware: bool = False


class SessionConfig(StrictModel):
    """The named conversation a ``claude_session`` step continues."""

    session_name: str = Field(min_length=1)
    persist: bool = True
    continue_on_restart: bool = True
    checkpoint_frequency: int = Field(default=1, ge=1)
    max_turns: int | None = Field(default=None, ge=1)
    description: str | None = None


class ClaudeSessionStep(_ClaudeBase):
    """A Claude call inside a persisted conversation found by ``session_name``."""

    type: Literal["claude_session"]
    session_config: SessionConfig


class ExtractionConfig(StrictModel):
    """Post-processing of a ``claude_extract`` answer."""

    format: Literal["text", "json", "structured", "summary", "markdown"] = "text"
    post_processing: list[
        Literal[
            "extract_code_blocks",
            "extract_recommendations",
            "extract_links",
            "extract_key_points",
            "generate_summary",
        ]
    ] = Field(default_factory=list)
    max_summary_length: int = Field(default=500, gt=0)
    use_content_extractor: bool = True
    include_metadata: bool = False


class ClaudeExtractStep(_ClaudeBase):
    """A Claude call whose text is formatted and mined (code blocks, links, ...)."""

    type: Literal["claude_extract"]
    preset: Preset | None = None
    extraction_config: ExtractionConfig = Field(default_factory=ExtractionConfig)


class BatchTask(StrictModel):
    """One prompt of a ``claude_batch`` step."""

    id: str = Field(min_length=1)
    prompt: PromptSpec
    output_to_file: str | None = None
    claude_options: ClaudeOptions | None = None


class BatchConfig(StrictModel):
    """Concurrency and time limits of a ``claude_batch`` step."""

    max_parallel: int = Field(default=5, ge=1, le=100)
    timeout_per_task: float | None = Field(default=None, gt=0)
    consolidate_results: bool = True


class ClaudeBatchStep(LlmStepBase):
    """Many prompts run in parallel, bounded by ``max_parallel``."""

    type: Literal["claude_batch"]
    tasks: list[BatchTask] = Field(min_length=1)
    batch_config: BatchConfig = Field(default_factory=BatchConfig)
    claude_options: ClaudeOptions = Field(default_factory=ClaudeOptions)

    @model_validator(mode="after")
    def _unique_task_ids(self) -> ClaudeBatchStep:
        _require_unique([t.id for t in self.tasks], "task id")
        return self


class RobustRetryConfig(StrictModel):
    """``claude_robust``'s retry policy and what to do when it is exhausted."""

    max_retries: int = Field(default=3, ge=0, le=20)
    backoff_strategy: Literal["exponential", "linear", "fixed"] = "exponential"
    base_delay_ms: int = Field(default=1000, ge=0)
    max_delay_ms: int = Field(default=30_000, ge=0)
    retry_conditions: list[str] = Field(default_factory=list)
    fallback_action: (
        Literal[
            "graceful_degradation", "use_cached_response", "simplified_prompt", "emergency_response"
        ]
        | None
    ) = None


class ClaudeRobustStep(_ClaudeBase):
    """A Claude call under an explicit retry policy with a final fallback action."""

    type: Literal["claude_robust"]
    retry_config: RobustRetryConfig = Field(default_factory=RobustRetryConfig)


class ParallelTask(StrictModel):
    """One task of a ``parallel_claude`` step."""

    id: str = Field(min_length=1)
    prompt: PromptSpec
    claude_options: ClaudeOptions | None = None
    output_to_file: str | None = None
    condition: Condition | None = None


class ParallelClaudeStep(LlmStepBase):
    """Independent Claude calls run concurrently; the result maps task id to result."""

    type: Literal["parallel_claude"]
    parallel_tasks: list[ParallelTask] = Field(min_length=1)
    max_parallel: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _unique_task_ids(self) -> ParallelClaudeStep:
        _require_unique([t.id for t in self.parallel_tasks], "task id")
        return self


class GeminiStep(LlmStepBase):
    """One Gemini call; ``functions`` name entries of the root ``gemini_functions``."""

    type: Literal["gemini"]
    prompt: PromptSpec
    model: str | None = None
    token_budget: TokenBudget | None = None
    functions: list[str] = Field(default_factory=list)


class GeminiInstructorStep(LlmStepBase):
    """A Gemini call whose output must validate against a schema.

    The schema is ``output_schema`` (ours), pipeline_ex's ``schema``, or, as
    pipeline_ex's instructor steps do, the parameters of the first of ``functions``
    (declared in the root ``gemini_functions``). One of them is required.
    """

    type: Literal["gemini_instructor"]
    prompt: PromptSpec
    model: str | None = None
    token_budget: TokenBudget | None = None
    schema_: JsonSchema | None = Field(default=None, alias="schema")
    functions: list[str] = Field(default_factory=list)
    validation_mode: Literal["strict", "loose"] = "strict"

    @field_validator("schema_")
    @classmethod
    def _schema_is_valid(cls, value: JsonSchema | None) -> JsonSchema | None:
        return check_json_schema(value)

    @model_validator(mode="after")
    def _has_schema(self) -> GeminiInstructorStep:
        if self.schema_ is None and self.output_schema is None and not self.functions:
            msg = (
                "gemini_instructor needs 'output_schema' (or pipeline_ex's 'schema' or 'functions')"
            )
            raise ValueError(msg)
        return self


class LlmStep(LlmStepBase):
    """Ours: a provider-agnostic call (``provider``/``model`` from the step or defaults)."""

    type: Literal["llm"]
    prompt: PromptSpec
    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    stream: bool = False


def _require_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            msg = f"duplicate {what} {value!r}"
            raise ValueError(msg)
        seen.add(value)

"""Shared building blocks of the pipeline spec: the strict base model, prompt parts
and the keys every step has.

Every model rejects unknown keys (``extra="forbid"``) and is frozen: a loaded
pipeline is a value, never mutated while it runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "JsonSchema",
    "PromptPart",
    "PromptSpec",
    "RetrySpec",
    "StepBase",
    "StrictModel",
]

JsonSchema = dict[str, Any]
Condition = str | bool | dict[str, Any] | list[Any]


def check_json_schema(value: JsonSchema | None) -> JsonSchema | None:
    """Reject an ``output_schema`` that is not itself a valid JSON Schema (at load time)."""
    if value is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
            msg = f"not a valid JSON Schema at {where}: {exc.message}"
            raise ValueError(msg) from None
    return value


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StaticPart(StrictModel):
    """Literal text (templates inside are rendered)."""

    type: Literal["static"]
    content: str


class FilePart(StrictModel):
    """A file's content, read from inside the workspace."""

    type: Literal["file"]
    path: str
    variables: dict[str, Any] = Field(default_factory=dict)
    inject_as: str | None = None
    encoding: str = "utf-8"


class PreviousResponsePart(StrictModel):
    """A previous step's result, or a path inside it (``extract: a.b.c``)."""

    type: Literal["previous_response"]
    step: str
    extract: str | None = None
    strict: bool = True
    extract_with: str | None = None
    summary: bool = False
    max_length: int | None = Field(default=None, gt=0)


class SessionContextPart(StrictModel):
    """The rendered history of a named conversation (fix: pipeline_ex left it empty)."""

    type: Literal["session_context"]
    session_id: str
    include_last_n: int | None = Field(default=None, gt=0)


class ClaudeContinuePart(StrictModel):
    """pipeline_ex's continuation prompt: rendered as its ``new_prompt`` text."""

    type: Literal["claude_continue"]
    new_prompt: str


PromptPart = Annotated[
    StaticPart | FilePart | PreviousResponsePart | SessionContextPart | ClaudeContinuePart,
    Field(discriminator="type"),
]

# pipeline_ex accepts a bare string as a one-part static prompt; so do we.
PromptSpec = str | list[PromptPart]


class RetrySpec(StrictModel):
    """Ours: retry a failing step. ``backoff_s`` doubles per attempt (capped)."""

    attempts: int = Field(default=1, ge=1, le=20)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)


class StepBase(StrictModel):
    """Keys every step type has."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    role: str | None = None  # pipeline_ex's brain/muscle annotation; informational
    condition: Condition | None = None
    output_to_file: str | None = None
    output_schema: JsonSchema | None = None
    retry: RetrySpec | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    continue_on_error: bool = False

    @field_validator("output_schema")
    @classmethod
    def _schema_is_valid(cls, value: JsonSchema | None) -> JsonSchema | None:
        return check_json_schema(value)

    @field_validator("name")
    @classmethod
    def _name_is_addressable(cls, value: str) -> str:
        if value.strip() != value or "{{" in value or "." in value:
            msg = "step names may not contain '.', '{{' or surrounding spaces"
            raise ValueError(msg)
        return value

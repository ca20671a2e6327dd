"""Spec models of the non-LLM step types: variables, loops, nested pipelines,
data transforms, file operations, tools and the test echo step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from pipelines.spec._base import Condition, StepBase, StrictModel
from pipelines.spec.transforms import TransformOperation

if TYPE_CHECKING:
    from pipelines.spec.workflow import Step, Workflow

__all__ = [
    "DataTransformStep",
    "FileCheck",
    "FileOpsStep",
    "ForLoopStep",
    "NestedConfig",
    "OutputMapping",
    "PipelineStep",
    "SetVariableStep",
    "TestEchoStep",
    "ToolStep",
    "WhileLoopStep",
]

#: Hard caps that no YAML can raise: loops are bounded by construction.
MAX_LOOP_ITERATIONS = 10_000


class SetVariableStep(StepBase):
    """Sets variables (templates allowed) readable as ``{{state.name}}`` or ``name``."""

    type: Literal["set_variable"]
    variables: dict[str, Any] = Field(min_length=1)
    scope: Literal["global", "session", "loop", "local"] = "global"


class ForLoopStep(StepBase):
    """Runs ``steps`` once per item of ``data_source`` bound to ``loop.<iterator>``."""

    type: Literal["for_loop"]
    iterator: str = Field(default="item", min_length=1)
    data_source: Any
    steps: list[Step] = Field(min_length=1)
    parallel: bool = False
    max_parallel: int = Field(default=5, ge=1, le=100)
    break_on_error: bool = True
    break_condition: Condition | None = None
    max_iterations: int = Field(default=1000, ge=1, le=MAX_LOOP_ITERATIONS)


class WhileLoopStep(StepBase):
    """Repeats ``steps`` while ``condition`` holds, at most ``max_iterations`` times.

    Here ``condition`` is the loop condition, not a skip condition.
    """

    type: Literal["while_loop"]
    steps: list[Step] = Field(min_length=1)
    max_iterations: int = Field(default=100, ge=1, le=MAX_LOOP_ITERATIONS)
    timeout_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _has_condition(self) -> WhileLoopStep:
        if self.condition is None:
            msg = "while_loop needs a 'condition'"
            raise ValueError(msg)
        return self


class OutputMapping(StrictModel):
    """Take ``path`` from the child's results and expose it ``as`` a name."""

    path: str = Field(min_length=1)
    as_: str = Field(alias="as", min_length=1)


class NestedConfig(StrictModel):
    """Limits and context of a nested pipeline."""

    inherit_context: bool = False
    inherit_providers: bool = True
    inherit_functions: bool = True
    workspace_dir: str | None = None
    checkpoint_enabled: bool = False
    timeout_seconds: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=0, ge=0, le=10)
    continue_on_error: bool = False
    max_depth: int = Field(default=10, ge=1, le=50)
    max_total_steps: int = Field(default=1000, ge=1, le=100_000)
    memory_limit_mb: int | None = None
    enable_tracing: bool = False


class PipelineStep(StepBase):
    """Runs another pipeline (``pipeline_file`` or inline ``pipeline``).

    With ``inputs`` the result is ``{result: <child results>}`` (pipeline_ex's shape).
    """

    type: Literal["pipeline"]
    pipeline_file: str | None = None
    pipeline_ref: str | None = None
    pipeline: Workflow | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: list[str | OutputMapping] = Field(default_factory=list)
    config: NestedConfig = Field(default_factory=NestedConfig)

    @model_validator(mode="after")
    def _one_source(self) -> PipelineStep:
        sources = [s for s in (self.pipeline_file, self.pipeline_ref, self.pipeline) if s]
        if len(sources) != 1:
            msg = "a pipeline step needs exactly one of 'pipeline_file', 'pipeline_ref', 'pipeline'"
            raise ValueError(msg)
        return self


class DataTransformStep(StepBase):
    """Applies filter/map/aggregate/join/group_by/sort operations to ``input_source``."""

    type: Literal["data_transform"]
    input_source: Any
    operations: list[TransformOperation] = Field(min_length=1)
    output_field: str = "result"


class FileCheck(StrictModel):
    """One file a ``file_ops`` ``validate`` checks."""

    path: str
    must_exist: bool = True
    must_be_dir: bool = False
    min_size: int | None = Field(default=None, ge=0)
    max_size: int | None = Field(default=None, ge=0)


class FileOpsStep(StepBase):
    """copy/move/delete/validate/list/convert, inside the workspace only."""

    type: Literal["file_ops"]
    operation: Literal["copy", "move", "delete", "validate", "list", "convert"]
    source: str | list[str] | None = None
    destination: str | None = None
    files: list[FileCheck] = Field(default_factory=list)
    format: Literal["csv_to_json", "json_to_csv", "yaml_to_json", "json_to_yaml"] | None = None
    path: str = "."
    pattern: str = "*"
    recursive: bool = False

    @model_validator(mode="after")
    def _operation_keys(self) -> FileOpsStep:
        needs: dict[str, tuple[str, ...]] = {
            "copy": ("source", "destination"),
            "move": ("source", "destination"),
            "delete": ("source",),
            "validate": ("files",),
            "convert": ("source", "destination", "format"),
            "list": (),
        }
        missing = [k for k in needs[self.operation] if not getattr(self, k)]
        if missing:
            msg = f"file_ops '{self.operation}' needs {', '.join(repr(m) for m in missing)}"
            raise ValueError(msg)
        return self


class ToolStep(StepBase):
    """Ours: runs a registered tool (static_analysis, read_file, list_files, search, run_tests)."""

    type: Literal["tool"]
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class TestEchoStep(StepBase):
    """Returns ``value`` (or fails when ``fail`` is true); for tests.

    ``delay_s`` (ours) makes it wait first, for timeout and concurrency tests.
    """

    __test__ = False  # not a pytest test class, despite the name

    type: Literal["test_echo"]
    value: Any = None
    fail: bool | str = False  # a string is a template rendered at run time
    message: str = "test_echo step failed as requested"
    delay_s: float = Field(default=0.0, ge=0, le=3600)

"""Step handlers, one per step type: ``HANDLERS[type](step, state, runner) -> result``."""

from __future__ import annotations

from typing import Any

from pipelines.runner.steps.basic import run_test_echo, run_tool
from pipelines.runner.steps.control import run_for_loop, run_set_variable, run_while_loop
from pipelines.runner.steps.data import run_data_transform, run_file_ops
from pipelines.runner.steps.llm import (
    run_claude,
    run_claude_extract,
    run_claude_session,
    run_claude_smart,
    run_gemini,
    run_gemini_instructor,
    run_llm,
)
from pipelines.runner.steps.llm_multi import (
    run_claude_batch,
    run_claude_robust,
    run_parallel_claude,
)
from pipelines.runner.steps.nested import run_pipeline_step
from pipelines.spec import STEP_TYPES

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Any] = {
    "claude": run_claude,
    "gemini": run_gemini,
    "llm": run_llm,
    "claude_smart": run_claude_smart,
    "claude_session": run_claude_session,
    "claude_extract": run_claude_extract,
    "claude_batch": run_claude_batch,
    "claude_robust": run_claude_robust,
    "parallel_claude": run_parallel_claude,
    "gemini_instructor": run_gemini_instructor,
    "set_variable": run_set_variable,
    "for_loop": run_for_loop,
    "while_loop": run_while_loop,
    "data_transform": run_data_transform,
    "file_ops": run_file_ops,
    "pipeline": run_pipeline_step,
    "tool": run_tool,
    "test_echo": run_test_echo,
}

if set(HANDLERS) != set(STEP_TYPES):  # a new step type without a handler is a bug
    raise RuntimeError(f"step types without handlers: {set(STEP_TYPES) ^ set(HANDLERS)}")

"""Handlers of the ``tool`` and ``test_echo`` steps."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, RunError
from pipelines.expressions import truthy
from pipelines.spec import TestEchoStep, ToolStep

if TYPE_CHECKING:
    from pipelines.runner.context import RunState
    from pipelines.runner.engine import Runner

__all__ = ["run_test_echo", "run_tool"]


async def run_tool(step: ToolStep, state: RunState, runner: Runner) -> dict[str, Any]:
    """Run a registered tool with rendered ``args`` in the run's workspace."""
    args = runner.render(step.args, state, step)
    if not isinstance(args, Mapping):
        raise ConfigError(f"step {step.name!r}: 'args' must render to a mapping")
    tool = runner.tools.get(step.tool)
    output = await tool.run(args, state.workspace)
    return {"success": True, "tool": step.tool, **output}


async def run_test_echo(step: TestEchoStep, state: RunState, runner: Runner) -> dict[str, Any]:
    """Return ``value`` (rendered); a mapping's keys are merged into the result."""
    if step.delay_s:
        await asyncio.sleep(step.delay_s)
    if truthy(runner.render(step.fail, state, step)):
        raise RunError(str(runner.render(step.message, state, step)), code="test_failure")
    value = runner.render(step.value, state, step)
    result: dict[str, Any] = {"success": True, "value": value}
    if isinstance(value, Mapping):
        result.update({k: v for k, v in value.items() if k not in result})
    return result

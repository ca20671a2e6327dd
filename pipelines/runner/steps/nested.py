"""Handler of the ``pipeline`` step: a nested pipeline with a recursion guard.

The child gets its own results namespace, the parent's workspace (or
``config.workspace_dir`` inside it), and shares the run's step budget. A file
already on the chain of running pipelines is a cycle: ``NestingError``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, NestingError, StepFailed
from pipelines.loader import load_document, load_pipeline
from pipelines.runner._inputs import bind_inputs
from pipelines.runner.prompt import extract_path
from pipelines.spec import OutputMapping, PipelineStep

if TYPE_CHECKING:
    from pipelines.runner.context import RunState
    from pipelines.runner.engine import Runner

__all__ = ["run_pipeline_step"]


async def run_pipeline_step(step: PipelineStep, state: RunState, runner: Runner) -> dict[str, Any]:
    config = step.config
    limit = state.workflow.resource_limits
    max_depth = (
        min(config.max_depth, limit.max_nesting_depth)
        if limit and limit.max_nesting_depth
        else config.max_depth
    )
    if step.pipeline_ref is not None:
        raise ConfigError(
            f"step {step.name!r}: 'pipeline_ref' registries are not supported; use pipeline_file"
        )
    if step.pipeline_file is not None:
        path = (state.base_dir / str(runner.render(step.pipeline_file, state, step))).resolve()
        identity = str(path)
        state.enter(identity, max_depth=max_depth)
        loaded = load_pipeline(path)
    else:
        if step.pipeline is None:  # the spec guarantees one source; keep mypy and readers sure
            raise ConfigError(f"step {step.name!r}: no pipeline to run")
        identity = f"{state.stack[-1]}#{step.name}"
        state.enter(identity, max_depth=max_depth)
        loaded = load_document(
            {"workflow": step.pipeline.model_dump(by_alias=True, exclude_unset=True)},
            source=identity,
            base_dir=state.base_dir,
        )
    state.totals.max_total_steps = min(state.totals.max_total_steps, config.max_total_steps)
    inputs = bind_inputs(loaded.workflow, runner.render(step.inputs, state, step))
    workspace = state.workspace
    if config.workspace_dir:
        workspace = type(workspace)(workspace.resolve(config.workspace_dir), create=True)
    child = runner.new_state(
        loaded.workflow,
        inputs,
        base_dir=loaded.base_dir,
        run_id=state.run_id,
        totals=state.totals,
        identity=identity,
        depth=state.depth + 1,
        stack=state.stack,
        workspace=workspace,
    )
    child.output_dir = state.output_dir
    if config.inherit_context:
        child.variables.update(state.variables)
    try:
        async with asyncio.timeout(config.timeout_seconds):
            results = await runner.execute_steps(loaded.workflow.steps, child)
    except NestingError:
        raise
    except StepFailed as exc:
        raise StepFailed(
            f"nested pipeline {loaded.workflow.name!r}: {exc.message}",
            step=step.name,
            step_type=step.type,
            code=exc.code,
            retryable=exc.retryable,
        ) from exc
    body = _outputs(step, results) if step.outputs else results
    if step.inputs:
        return {"success": True, "result": body}
    return {"success": True, **body}


def _outputs(step: PipelineStep, results: dict[str, Any]) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for output in step.outputs:
        if isinstance(output, OutputMapping):
            found, value = extract_path(results, output.path)
            name = output.as_
        else:
            found, value = extract_path(results, output)
            name = output
        if not found:
            raise ConfigError(f"step {step.name!r}: nested pipeline produced no {name!r} output")
        chosen[name] = value
    return chosen

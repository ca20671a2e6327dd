"""Handlers of set_variable, for_loop and while_loop.

Loop bodies run in a child :class:`RunState` per iteration, so ``{{loop.<iterator>}}``
and the iteration's own sub-step results are visible to the sub-steps (fix:
pipeline_ex lost ``loop.<iterator>`` in sub-steps). Parallel iterations run in an
``asyncio.TaskGroup`` bounded by ``max_parallel``.
"""

from __future__ import annotations

import asyncio
from collections import ChainMap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, StepFailed
from pipelines.spec import ForLoopStep, SetVariableStep, WhileLoopStep

if TYPE_CHECKING:
    from pipelines.runner.context import RunState
    from pipelines.runner.engine import Runner

__all__ = ["run_for_loop", "run_set_variable", "run_while_loop"]


async def run_set_variable(
    step: SetVariableStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    """Render each value, then set it; later values see earlier ones."""
    assigned: dict[str, Any] = {}
    for name, value in step.variables.items():
        rendered = runner.render(value, state, step)
        state.set_variable(name, rendered, scope=step.scope)
        assigned[name] = rendered
    return {"success": True, "variables": assigned}


def _items(step: ForLoopStep, state: RunState, runner: Runner) -> list[Any]:
    source = runner.render(step.data_source, state, step)
    if isinstance(source, Mapping):
        return [{"key": k, "value": v} for k, v in source.items()]
    if isinstance(source, list | tuple):
        return list(source)
    if isinstance(source, str):
        return [line for line in source.splitlines() if line.strip()]
    raise ConfigError(
        f"step {step.name!r}: data_source must be a list, mapping or text, "
        f"not {type(source).__name__}"
    )


async def run_for_loop(step: ForLoopStep, state: RunState, runner: Runner) -> dict[str, Any]:
    """One iteration per item; results are a list of per-iteration sub-step results."""
    items = _items(step, state, runner)
    if len(items) > step.max_iterations:
        raise ConfigError(
            f"step {step.name!r}: {len(items)} items exceed max_iterations={step.max_iterations}"
        )
    parent_loop = dict(state.loop)

    def bindings(index: int, item: Any) -> dict[str, Any]:
        bound = {step.iterator: item, "item": item, "index": index}
        if parent_loop:
            bound["parent"] = parent_loop
        return bound

    if step.parallel:
        iterations = await _parallel(step, items, bindings, state, runner)
        broke_at = None
    else:
        iterations, broke_at = await _sequential(step, items, bindings, state, runner)
    failed = [i for i, it in enumerate(iterations) if it.get("error")]
    result: dict[str, Any] = {
        "success": not failed,
        "iterations": len(iterations),
        "results": [it.get("results", {}) for it in iterations],
    }
    if failed:
        result["failed"] = [{"index": i, **iterations[i]["error"]} for i in failed]
    if broke_at is not None:
        result["stopped_at"] = broke_at
    return result


async def _iteration(step: ForLoopStep, child: RunState, runner: Runner) -> dict[str, Any]:
    try:
        return {"results": await runner.execute_steps(step.steps, child)}
    except StepFailed as exc:
        if step.break_on_error:
            raise
        own = child.results.maps[0] if isinstance(child.results, ChainMap) else child.results
        return {
            "results": dict(own),
            "error": {"code": exc.code, "message": exc.message, "step": exc.step},
        }


async def _sequential(
    step: ForLoopStep, items: list[Any], bindings: Any, state: RunState, runner: Runner
) -> tuple[list[dict[str, Any]], int | None]:
    done: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        child = state.iteration(bindings(index, item))
        done.append(await _iteration(step, child, runner))
        if step.break_condition is not None and runner.check(step.break_condition, child):
            return done, index
    return done, None


async def _parallel(
    step: ForLoopStep, items: list[Any], bindings: Any, state: RunState, runner: Runner
) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(step.max_parallel)
    done: list[dict[str, Any]] = [{} for _ in items]

    async def one(index: int, item: Any) -> None:
        async with gate:
            done[index] = await _iteration(step, state.iteration(bindings(index, item)), runner)

    async with asyncio.TaskGroup() as group:
        for index, item in enumerate(items):
            group.create_task(one(index, item))
    return done


async def run_while_loop(step: WhileLoopStep, state: RunState, runner: Runner) -> dict[str, Any]:
    """Body runs while the condition holds; ``max_iterations`` is a hard cap, not an error."""
    iterations: list[dict[str, Any]] = []
    async with asyncio.timeout(step.timeout_seconds):
        while len(iterations) < step.max_iterations and runner.check(step.condition, state):
            child = state.iteration({"index": len(iterations), "iteration": len(iterations)})
            produced = await runner.execute_steps(step.steps, child)
            # The loop condition reads the latest iteration's results: lift them up.
            state.results.update(produced)
            iterations.append(produced)
    capped = len(iterations) >= step.max_iterations and runner.check(step.condition, state)
    return {
        "success": True,
        "iterations": len(iterations),
        "results": iterations,
        "max_iterations_reached": capped,
    }

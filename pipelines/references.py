"""Static checks of the references inside a workflow, run at load time.

Catches, before anything runs: a ``previous_response`` or ``{{steps.x...}}`` naming
a step that does not exist, a condition naming an unknown variable, and malformed
templates or conditions. Errors are :class:`~pipelines.errors.SpecError` with the
file, line, step and key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipelines._yaml_source import LineIndex
from pipelines.errors import ConfigError, SpecError
from pipelines.expressions import ROOTS, parse, references
from pipelines.spec import (
    ForLoopStep,
    PipelineStep,
    SetVariableStep,
    StepBase,
    WhileLoopStep,
    Workflow,
)
from pipelines.spec._base import PreviousResponsePart
from pipelines.templates import template_expressions

__all__ = ["ROOT_NAMES", "check_references", "condition_expressions", "strip_braces"]

ROOT_NAMES = ROOTS

_Path = tuple[str | int, ...]


def check_references(
    workflow: Workflow, *, lines: LineIndex, source: str, prefix: _Path = ("workflow",)
) -> None:
    """Raise ``SpecError`` for the first unresolvable reference in ``workflow``."""
    steps = [(step, path) for step, path in _walk(workflow.steps, (*prefix, "steps"))]
    known = {step.name for step, _ in steps}
    names = known | set(workflow.inputs) | _variables(workflow)
    for step, path in steps:
        _check_step(step, path, known=known, names=names, lines=lines, source=source)
        if isinstance(step, PipelineStep) and step.pipeline is not None:
            check_references(step.pipeline, lines=lines, source=source, prefix=(*path, "pipeline"))


def _walk(steps: list[Any], path: _Path) -> Iterator[tuple[StepBase, _Path]]:
    for index, step in enumerate(steps):
        here = (*path, index)
        yield step, here
        if isinstance(step, ForLoopStep | WhileLoopStep):
            yield from _walk(step.steps, (*here, "steps"))


def _variables(workflow: Workflow) -> set[str]:
    found: set[str] = set()
    for step, _ in _walk(workflow.steps, ()):
        if isinstance(step, SetVariableStep):
            found.update(step.variables)
        if isinstance(step, ForLoopStep):
            found.add(step.iterator)
    return found


def strip_braces(condition: str) -> str:
    """pipeline_ex writes conditions as ``"{{expr}}"`` too; both mean ``expr``."""
    text = condition.strip()
    if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
        return text[2:-2].strip()
    return text


def condition_expressions(condition: Any) -> Iterator[str]:
    """Every expression string inside a condition (string, map or list form)."""
    if isinstance(condition, str):
        yield strip_braces(condition)
    elif isinstance(condition, Mapping):
        for value in condition.values():
            yield from condition_expressions(value)
    elif isinstance(condition, list):
        for item in condition:
            yield from condition_expressions(item)


def _check_step(
    step: StepBase,
    path: _Path,
    *,
    known: set[str],
    names: set[str],
    lines: LineIndex,
    source: str,
) -> None:
    def fail(message: str, key: str, at: _Path) -> SpecError:
        return SpecError(message, file=source, line=lines.line_of(at), step=step.name, key=key)

    for part_path, part in _previous_responses(step, path):
        if part.step not in known:
            raise fail(f"reference to a missing step {part.step!r}", "step", (*part_path, "step"))

    fields = step.model_dump(by_alias=True, exclude_none=True, exclude={"condition"})
    if isinstance(step, ForLoopStep | WhileLoopStep):
        fields.pop("steps", None)
    if isinstance(step, PipelineStep):
        fields.pop("pipeline", None)  # its own namespace, checked recursively
    exprs = [("condition", e) for e in condition_expressions(step.condition)]
    try:
        for key, value in fields.items():
            exprs.extend((key, e) for e in template_expressions(value))
    except ConfigError as exc:
        raise fail(exc.message, "template", path) from None
    for key, expression in exprs:
        try:
            used = references(parse(expression))
        except ConfigError as exc:
            raise fail(exc.message, key, (*path, key)) from None
        for ref in used:
            problem = _unresolvable(ref, known=known, names=names)
            if problem:
                raise fail(f"{problem} in {expression!r}", key, (*path, key))


def _unresolvable(ref: tuple[str, ...], *, known: set[str], names: set[str]) -> str | None:
    if not ref:
        return None
    root = ref[0]
    if root == "steps":
        if len(ref) > 1 and ref[1] not in known:
            return f"reference to a missing step {ref[1]!r}"
        return None
    if root in ROOT_NAMES or root in names:
        return None
    return f"unknown name {root!r} (not a step, input, variable or loop iterator)"


def _previous_responses(
    step: StepBase, path: _Path
) -> Iterator[tuple[_Path, PreviousResponsePart]]:
    prompt = getattr(step, "prompt", None)
    if isinstance(prompt, list):
        for index, part in enumerate(prompt):
            if isinstance(part, PreviousResponsePart):
                yield (*path, "prompt", index), part
    for container in ("tasks", "parallel_tasks"):
        for t_index, task in enumerate(getattr(step, container, None) or []):
            if isinstance(task.prompt, list):
                for index, part in enumerate(task.prompt):
                    if isinstance(part, PreviousResponsePart):
                        yield (*path, container, t_index, "prompt", index), part

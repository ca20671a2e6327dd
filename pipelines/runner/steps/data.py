"""Handlers of data_transform and file_ops.

``file_ops`` works inside the workspace only: every source and destination goes
through :meth:`Workspace.resolve`, globs included, so ``..`` or a symlink out of
the workspace fails the step before anything is touched.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines._atomic import write_text_atomic
from pipelines.errors import ConfigError, RunError, StepFailed
from pipelines.expressions import evaluate
from pipelines.runner.transforms import apply_operations
from pipelines.spec import DataTransformStep, FileOpsStep
from pipelines.tools import Workspace

if TYPE_CHECKING:
    from pipelines.runner.context import RunState
    from pipelines.runner.engine import Runner

__all__ = ["run_data_transform", "run_file_ops"]


async def run_data_transform(
    step: DataTransformStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    data = runner.render(step.input_source, state, step)
    scope = state.scope()

    def per_item(expression: str, names: Mapping[str, Any]) -> Any:
        item_scope = scope.child(state=ChainMap(dict(names), dict(scope.state)))
        return evaluate(expression, item_scope)

    try:
        output = apply_operations(
            data,
            step.operations,
            evaluate=per_item,
            resolve=lambda value: runner.render(value, state, step),
        )
    except StepFailed as exc:
        raise StepFailed(exc.detail, step=step.name, step_type=step.type, code=exc.code) from exc
    return {"success": True, step.output_field: output}


async def run_file_ops(step: FileOpsStep, state: RunState, runner: Runner) -> dict[str, Any]:
    ws = state.workspace
    source = runner.render(step.source, state, step) if step.source is not None else None
    destination = runner.render(step.destination, state, step) if step.destination else None
    if step.operation == "list":
        return await asyncio.to_thread(
            _list, ws, str(runner.render(step.path, state, step)), step.pattern, step.recursive
        )
    if step.operation == "validate":
        return await asyncio.to_thread(_validate, ws, step, state, runner)
    sources = _expand(ws, source)
    if step.operation == "delete":
        return await asyncio.to_thread(_delete, ws, sources)
    if destination is None:  # the spec requires it; a template may still render empty
        raise ConfigError(f"step {step.name!r}: '{step.operation}' needs a destination")
    target = ws.resolve(str(destination))
    if step.operation == "convert":
        if len(sources) != 1:
            raise ConfigError(f"step {step.name!r}: convert takes one source, got {len(sources)}")
        return await asyncio.to_thread(_convert, ws, sources[0], target, step.format or "")
    return await asyncio.to_thread(
        _copy_or_move, ws, sources, target, str(destination), step.operation
    )


def _expand(ws: Workspace, source: Any) -> list[Path]:
    patterns = source if isinstance(source, list) else [source]
    found: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if any(ch in text for ch in "*?["):
            ws.resolve(text.split("*", maxsplit=1)[0] or ".")  # the fixed prefix must be inside
            matches = sorted(ws.root.glob(text))
            found.extend(ws.resolve(m) for m in matches)
        else:
            found.append(ws.resolve(text, must_exist=True))
    if not found:
        raise RunError(f"no files match {source!r}", code="not_found")
    return found


def _list(ws: Workspace, path: str, pattern: str, recursive: bool) -> dict[str, Any]:
    base = ws.resolve(path, must_exist=True)
    matches = base.rglob(pattern) if recursive else base.glob(pattern)
    files = sorted(ws.relative(m) for m in matches if ws.contains(m.resolve()))
    return {"success": True, "files": files, "count": len(files)}


def _validate(ws: Workspace, step: FileOpsStep, state: RunState, runner: Runner) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    for check in step.files:
        path = ws.resolve(str(runner.render(check.path, state, step)))
        problems: list[str] = []
        if not path.exists():
            if check.must_exist:
                problems.append("does not exist")
        else:
            if check.must_be_dir and not path.is_dir():
                problems.append("is not a directory")
            size = path.stat().st_size
            if check.min_size is not None and size < check.min_size:
                problems.append(f"is {size} bytes, under min_size {check.min_size}")
            if check.max_size is not None and size > check.max_size:
                problems.append(f"is {size} bytes, over max_size {check.max_size}")
        checks.append({"path": check.path, "valid": not problems, "problems": problems})
    invalid = [c for c in checks if not c["valid"]]
    if invalid:
        detail = "; ".join(f"{c['path']} {', '.join(c['problems'])}" for c in invalid)
        raise RunError(f"validation failed: {detail}", code="validation_failed")
    return {"success": True, "valid": True, "checks": checks}


def _delete(ws: Workspace, sources: list[Path]) -> dict[str, Any]:
    deleted = []
    for path in sources:
        if path == ws.root:
            raise ConfigError("file_ops delete refuses to delete the workspace itself")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        deleted.append(ws.relative(path))
    return {"success": True, "deleted": deleted}


def _copy_or_move(
    ws: Workspace, sources: list[Path], target: Path, raw: str, op: str
) -> dict[str, Any]:
    into_dir = len(sources) > 1 or raw.endswith("/") or target.is_dir()
    if into_dir:
        target.mkdir(parents=True, exist_ok=True)
    done = []
    for path in sources:
        dest = target / path.name if into_dir else target
        dest.parent.mkdir(parents=True, exist_ok=True)
        if op == "move":
            shutil.move(str(path), str(dest))
        elif path.is_dir():
            shutil.copytree(path, dest, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(path, dest, follow_symlinks=False)
        done.append({"from": ws.relative(path), "to": ws.relative(dest)})
    return {"success": True, "operation": op, "files": done}


def _convert(ws: Workspace, source: Path, target: Path, fmt: str) -> dict[str, Any]:
    text = source.read_text(encoding="utf-8")
    try:
        if fmt == "csv_to_json":
            out = json.dumps(list(csv.DictReader(io.StringIO(text))), indent=2)
        elif fmt == "json_to_csv":
            out = _rows_to_csv(json.loads(text))
        elif fmt == "yaml_to_json":
            out = json.dumps(yaml.safe_load(text), indent=2, default=str)
        else:
            out = yaml.safe_dump(json.loads(text), sort_keys=False)
    except (ValueError, yaml.YAMLError, csv.Error) as exc:
        raise RunError(
            f"cannot convert {ws.relative(source)} ({fmt}): {exc}", code="convert_failed"
        ) from None
    write_text_atomic(target, out)
    return {
        "success": True,
        "format": fmt,
        "source": ws.relative(source),
        "destination": ws.relative(target),
    }


def _rows_to_csv(rows: Any) -> str:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("json_to_csv needs a JSON list of objects")
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()

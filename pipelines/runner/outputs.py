"""``output_to_file``: a step's result written inside the run's output directory.

``.json`` files (and names without a known text suffix) get the result as JSON;
``.md``/``.txt``/``.py``... get the result's ``text`` (or ``content``) when it has
one. The path is sandboxed to the output directory like any workspace path.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipelines._atomic import write_text_atomic
from pipelines.runner.context import RunState
from pipelines.spec import StepBase
from pipelines.templates import render
from pipelines.tools import Workspace

__all__ = ["write_output"]

_TEXT_SUFFIXES = frozenset({".md", ".txt", ".py", ".rst", ".html", ".diff", ".patch", ".csv"})


async def write_output(step: StepBase, result: dict[str, Any], state: RunState) -> str:
    """Write ``result`` to ``step.output_to_file``; returns the path written."""
    name = str(render(step.output_to_file or "", state.scope(), step=step.name))
    sandbox = Workspace(state.output_dir, create=True)
    target = sandbox.resolve(name)
    body = _body(result, target.suffix.lower())
    await asyncio.to_thread(write_text_atomic, target, body)
    return str(target)


def _body(result: dict[str, Any], suffix: str) -> str:
    if suffix in _TEXT_SUFFIXES:
        for key in ("text", "content"):
            if isinstance(result.get(key), str):
                return str(result[key])
    return json.dumps(result, indent=2, default=str, ensure_ascii=False)

"""Building a step's prompt text from its parts (PIPELINE_FORMAT.md, "Prompt parts").

Parts render in order and are joined by blank lines: ``static`` (templated),
``file`` (read inside the workspace), ``previous_response`` (a step's result or
a path in it), ``session_context`` (a conversation's history), and
``claude_continue`` (its ``new_prompt``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from pipelines.errors import ConfigError, TemplateError
from pipelines.runner.context import RunState
from pipelines.runner.sessions import SessionStore, render_history
from pipelines.spec import PromptSpec
from pipelines.spec._base import (
    ClaudeContinuePart,
    FilePart,
    PreviousResponsePart,
    SessionContextPart,
    StaticPart,
)
from pipelines.templates import render

__all__ = ["build_prompt", "extract_path", "value_text"]

MAX_FILE_PART_BYTES = 1_000_000


async def build_prompt(
    prompt: PromptSpec, state: RunState, *, step: str, sessions: SessionStore
) -> str:
    """The prompt as one string; raises ``ConfigError`` subclasses naming the step."""
    if isinstance(prompt, str):
        return str(_render_text(prompt, state, step))
    pieces: list[str] = []
    for part in prompt:
        if isinstance(part, StaticPart):
            pieces.append(_render_text(part.content, state, step))
        elif isinstance(part, FilePart):
            pieces.append(await _file_text(part, state, step))
        elif isinstance(part, PreviousResponsePart):
            pieces.append(_previous(part, state, step))
        elif isinstance(part, SessionContextPart):
            name = str(_render_text(part.session_id, state, step))
            history = await sessions.history(name)
            pieces.append(render_history(history, last_n=part.include_last_n))
        elif isinstance(part, ClaudeContinuePart):
            pieces.append(_render_text(part.new_prompt, state, step))
    return "\n\n".join(p for p in pieces if p)


def _render_text(text: str, state: RunState, step: str) -> str:
    return value_text(render(text, state.scope(), step=step))


async def _file_text(part: FilePart, state: RunState, step: str) -> str:
    path = state.workspace.resolve(str(_render_text(part.path, state, step)), must_exist=True)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise ConfigError(
            f"step {step!r}: cannot read prompt file {part.path!r}: {exc.strerror}"
        ) from None
    if len(data) > MAX_FILE_PART_BYTES:
        raise ConfigError(
            f"step {step!r}: prompt file {part.path!r} is over {MAX_FILE_PART_BYTES} bytes"
        )
    try:
        text = data.decode(part.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ConfigError(
            f"step {step!r}: prompt file {part.path!r} is not {part.encoding}: {exc}"
        ) from None
    if part.variables:
        # pipeline_ex file variables: {{NAME}} inside the file is replaced by the value.
        scope = state.scope()
        values = {k: render(v, scope, step=step) for k, v in part.variables.items()}
        for name, value in values.items():
            text = text.replace("{{" + name + "}}", value_text(value))
    if part.inject_as:
        return f"{part.inject_as}:\n{text}"
    return text


def _previous(part: PreviousResponsePart, state: RunState, step: str) -> str:
    if part.step not in state.results:
        raise TemplateError(
            f"previous_response names step {part.step!r}, which has not run", step=step
        )
    value = state.results[part.step]
    if part.extract:
        found, value = extract_path(value, part.extract)
        if not found:
            if part.strict:
                raise TemplateError(
                    f"previous_response: step {part.step!r} has no {part.extract!r}", step=step
                )
            value = ""
    text = value_text(value)
    if part.max_length and len(text) > part.max_length:
        text = text[: part.max_length].rstrip() + " …"
    return text


def extract_path(value: Any, path: str) -> tuple[bool, Any]:
    """Follow ``a.b.0.c`` into mappings and lists; returns (found, value)."""
    current = value
    for segment in path.split("."):
        if isinstance(current, Mapping) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and _is_index(segment, len(current)):
            current = current[int(segment)]
        else:
            return False, None
    return True, current


def _is_index(segment: str, length: int) -> bool:
    try:
        index = int(segment)
    except ValueError:
        return False
    return -length <= index < length


def value_text(value: Any) -> str:
    """A result as prompt text: strings as is, LLM results by their ``text``, else JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("text"), str) and "data" not in value:
        return str(value["text"])
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)

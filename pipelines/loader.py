"""Loading pipeline files: YAML → validated :class:`~pipelines.spec.Workflow`.

Every problem becomes one :class:`~pipelines.errors.SpecError` whose message names
the file, the line, the step and the key, and lists every validation error found
(up to :data:`MAX_REPORTED`), so a person fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipelines._yaml_source import LineIndex, parse_yaml
from pipelines.errors import SpecError
from pipelines.references import check_references
from pipelines.spec import STEP_TYPES, PipelineDocument, Workflow

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedPipeline",
    "load_pipeline",
    "load_pipeline_text",
    "load_workflow",
]

MAX_REPORTED = 10
MAX_FILE_BYTES = 2_000_000

_Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class LoadedPipeline:
    """A validated workflow and where it came from.

    ``base_dir`` anchors relative ``pipeline_file`` references; ``source`` is the
    file name used in error messages.
    """

    workflow: Workflow
    source: str
    base_dir: Path
    lines: LineIndex

    @property
    def name(self) -> str:
        return self.workflow.name


def load_pipeline(path: str | Path) -> LoadedPipeline:
    """Read, parse and validate one pipeline file; raises ``SpecError``."""
    file = Path(path)
    source = str(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise SpecError(f"file is larger than {MAX_FILE_BYTES} bytes", file=source)
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such pipeline file", file=source) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a pipeline file", file=source) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=source) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=source) from None
    return load_pipeline_text(text, source=source, base_dir=file.resolve().parent)


def load_pipeline_text(
    text: str, *, source: str = "<string>", base_dir: Path | None = None
) -> LoadedPipeline:
    """Parse and validate YAML text; ``source`` names it in errors."""
    data, lines = parse_yaml(text, source=source)
    return load_document(data, source=source, lines=lines, base_dir=base_dir)


def load_document(
    data: Any,
    *,
    source: str = "<inline>",
    lines: LineIndex | None = None,
    base_dir: Path | None = None,
) -> LoadedPipeline:
    """Validate an already-parsed document (``{"workflow": {...}}``)."""
    lines = lines or LineIndex()
    if not isinstance(data, Mapping):
        raise SpecError(
            f"the document must be a mapping with a 'workflow' key, not {type(data).__name__}",
            file=source,
            line=lines.line_of(()) or 1,
        )
    try:
        document = PipelineDocument.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, data, lines, source) from None
    check_references(document.workflow, lines=lines, source=source)
    return LoadedPipeline(document.workflow, source, base_dir or Path.cwd(), lines)


def load_workflow(data: Mapping[str, Any], *, source: str = "<inline>") -> Workflow:
    """Validate a bare workflow mapping (an inline nested pipeline's body)."""
    return load_document({"workflow": dict(data)}, source=source).workflow


# ------------------------------------------------------------------ error mapping


def _spec_error(exc: ValidationError, data: Any, lines: LineIndex, source: str) -> SpecError:
    located = [_locate(err, data, lines) for err in exc.errors(include_url=False)]
    first_line, first_step, first_key, _ = located[0]
    if len(located) == 1:
        return SpecError(
            located[0][3], file=source, line=first_line, step=first_step, key=first_key
        )
    rendered = [
        SpecError(msg, file=source, line=line, step=step, key=key).message
        for line, step, key, msg in located[:MAX_REPORTED]
    ]
    more = len(located) - MAX_REPORTED
    tail = f"\n  ... and {more} more" if more > 0 else ""
    summary = f"{len(located)} problems:\n  " + "\n  ".join(rendered) + tail
    return SpecError(summary, file=source, line=first_line, step=first_step, key=first_key)


def _locate(
    err: Mapping[str, Any], data: Any, lines: LineIndex
) -> tuple[int | None, str | None, str | None, str]:
    """Map a pydantic error to (line, step, key, message) by walking the data."""
    loc: Sequence[str | int] = err["loc"]
    cursor = data
    path: list[str | int] = []
    step: str | None = None
    key: str | None = None
    missing_key: str | None = None
    for position, element in enumerate(loc):
        if isinstance(cursor, Mapping) and element in cursor:
            path.append(element)
            key = str(element)
            cursor = cursor[element]
        elif isinstance(cursor, list) and isinstance(element, int) and 0 <= element < len(cursor):
            path.append(element)
            cursor = cursor[element]
            if isinstance(cursor, Mapping) and isinstance(cursor.get("name"), str):
                parent = path[-2] if len(path) >= 2 else None
                if parent in ("steps", "tasks", "parallel_tasks"):
                    step = cursor["name"] if parent == "steps" else f"{step}.{cursor.get('id')}"
        elif position == len(loc) - 1 and isinstance(element, str) and isinstance(cursor, Mapping):
            # The last element names a key absent from the data: a missing field.
            missing_key = element
        # Anything else is a union tag or member name pydantic inserts: skip it.
    line = lines.line_of(tuple(path))
    message = _message(err, cursor, missing_key)
    return line, step, missing_key or key, message


def _message(err: Mapping[str, Any], value: Any, missing_key: str | None) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (not part of the pipeline format)"
    if kind == "missing":
        return f"missing required key {missing_key!r}" if missing_key else "missing required key"
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", "?")
        expected = err.get("ctx", {}).get("expected_tags", "")
        if isinstance(value, Mapping) and "type" in value and value.get("type") == tag:
            known = ", ".join(STEP_TYPES) if "claude" in str(expected) else expected
            return f"unknown type {tag!r}; known types: {known}"
        return f"unknown type {tag!r}; expected one of {expected}"
    if kind == "union_tag_not_found":
        return "missing required key 'type'"
    text = str(err["msg"])
    return text.removeprefix("Value error, ")

"""Read-only file tools: ``read_file``, ``list_files`` and ``search``.

All three resolve paths through :class:`~.sandbox.Workspace` (escapes raise
``SandboxError``) and report paths relative to the workspace root, so a result
can be fed back as an argument. Filesystem work runs in a worker thread
(``asyncio.to_thread``) so a large tree never stalls the event loop.

Errors (``ToolError`` codes): ``invalid_arguments`` (schema violation, bad
range, invalid regex), ``not_found``, ``not_a_file``, ``binary_file``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.errors import ToolError

from ._args import invalid_argument, validate_arguments
from ._walk import compile_glob, walk_files
from .sandbox import Workspace

__all__ = ["ListFilesTool", "ReadFileTool", "SearchTool"]

# Files bigger than this are skipped by search: generated bundles and data dumps.
SEARCH_MAX_FILE_BYTES = 1_000_000
# A matched line longer than this is cut, so a minified file cannot flood a prompt.
SEARCH_MAX_LINE_CHARS = 500
_SNIFF_BYTES = 8192


class ReadFileTool:
    """``read_file``: the UTF-8 text of one file, optionally a line range, capped in bytes."""

    name = "read_file"
    description = (
        "Read a UTF-8 text file inside the workspace. Optional 1-based inclusive "
        "start_line/end_line select a range; output is capped at max_bytes "
        "(truncated=true when cut). Returns {path, content, lines (total lines in "
        "the file), start_line, end_line (last line returned, null if none), truncated}. "
        "Binary files are refused."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path relative to the workspace."},
            "start_line": {"type": "integer", "minimum": 1, "description": "First line (1-based)."},
            "end_line": {"type": "integer", "minimum": 1, "description": "Last line (inclusive)."},
            "max_bytes": {"type": "integer", "minimum": 1, "default": 200_000},
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    async def run(self, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        """Read the file; raises ``ToolError`` (not_found, not_a_file, binary_file)."""
        params = validate_arguments(self.name, self.parameters, args)
        start: int = params.get("start_line", 1)
        end: int | None = params.get("end_line")
        if end is not None and end < start:
            raise invalid_argument(self.name, "end_line", f"{end} is before start_line {start}")
        path = workspace.resolve(params["path"], must_exist=True)
        if not path.is_file():
            raise ToolError(f"{params['path']!r} is not a regular file", code="not_a_file")
        rel = workspace.relative(path)
        return await asyncio.to_thread(_read_lines, path, rel, start, end, params["max_bytes"])


def _read_lines(
    path: Path, rel: str, start: int, end: int | None, max_bytes: int
) -> dict[str, Any]:
    # Stream line by line: memory stays bounded by max_bytes, while the whole file is
    # still decoded so a binary tail is refused rather than half-shown.
    parts: list[str] = []
    size = 0
    truncated = False
    total = 0
    last: int | None = None
    with path.open("rb") as handle:
        for total, raw in enumerate(handle, start=1):
            text = _decode(raw, rel)
            if total < start or (end is not None and total > end) or truncated:
                continue
            if size + len(raw) > max_bytes:
                # UTF-8 never splits a character across a newline, so cutting inside
                # one line and dropping a partial character is safe.
                parts.append(raw[: max_bytes - size].decode("utf-8", errors="ignore"))
                truncated = True
                last = total
                continue
            parts.append(text)
            size += len(raw)
            last = total
    return {
        "path": rel,
        "content": "".join(parts),
        "lines": total,
        "start_line": start,
        "end_line": last,
        "truncated": truncated,
    }


def _decode(raw: bytes, rel: str) -> str:
    if b"\x00" in raw:
        raise ToolError(f"{rel!r} is a binary file", code="binary_file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{rel!r} is not UTF-8 text ({exc.reason})", code="binary_file") from exc


class ListFilesTool:
    """``list_files``: sorted workspace-relative paths of files matching a glob."""

    name = "list_files"
    description = (
        "List files under a directory of the workspace whose path (relative to that "
        "directory) matches a glob ('**/*' = everything, '*.py' = Python files at any "
        "depth, 'src/**/*.ts'). Skips .git, .venv, node_modules, __pycache__ and "
        "symlinks leading outside the workspace. Returns {files, truncated}."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "default": "."},
            "pattern": {"type": "string", "minLength": 1, "default": "**/*"},
            "max_results": {"type": "integer", "minimum": 1, "default": 1000},
        },
        "additionalProperties": False,
    }

    async def run(self, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        """List the files; raises ``ToolError(not_found)`` for a missing directory."""
        params = validate_arguments(self.name, self.parameters, args)
        top = workspace.resolve(params["path"], must_exist=True)
        pattern = compile_glob(params["pattern"])
        paths = await asyncio.to_thread(walk_files, workspace, top, pattern)
        limit: int = params["max_results"]
        return {
            "files": [workspace.relative(path) for path in paths[:limit]],
            "truncated": len(paths) > limit,
        }


class SearchTool:
    """``search``: regex matches, line by line, in the text files under a path."""

    name = "search"
    description = (
        "Search text files in the workspace for a Python regular expression, line by "
        "line. 'glob' filters files like list_files. Binary files and files over 1 MB "
        "are skipped. Returns {matches: [{file, line, text}], truncated}."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "minLength": 1, "maxLength": 2000},
            "path": {"type": "string", "default": "."},
            "glob": {"type": "string", "minLength": 1, "default": "**/*"},
            "max_results": {"type": "integer", "minimum": 1, "default": 200},
            "ignore_case": {"type": "boolean", "default": False},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    async def run(self, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        """Search; raises ``ToolError(invalid_arguments)`` carrying the regex error."""
        params = validate_arguments(self.name, self.parameters, args)
        flags = re.IGNORECASE if params["ignore_case"] else 0
        try:
            regex = re.compile(params["pattern"], flags)
        except re.error as exc:
            raise invalid_argument(
                self.name, "pattern", f"invalid regular expression: {exc}"
            ) from exc
        top = workspace.resolve(params["path"], must_exist=True)
        glob = compile_glob(params["glob"])
        return await asyncio.to_thread(_search, workspace, top, glob, regex, params["max_results"])


def _search(
    workspace: Workspace, top: Path, glob: re.Pattern[str], regex: re.Pattern[str], limit: int
) -> dict[str, Any]:
    matches: list[dict[str, Any]] = []
    for path in walk_files(workspace, top, glob):
        text = _text_or_none(path)
        if text is None:
            continue
        rel = workspace.relative(path)
        for number, line in enumerate(text.splitlines(), start=1):
            if regex.search(line) is None:
                continue
            if len(matches) == limit:
                return {"matches": matches, "truncated": True}
            matches.append({"file": rel, "line": number, "text": line[:SEARCH_MAX_LINE_CHARS]})
    return {"matches": matches, "truncated": False}


def _text_or_none(path: Path) -> str | None:
    """The file's text, or None when it is too big, binary or unreadable (skipped, not fatal)."""
    try:
        if path.stat().st_size > SEARCH_MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:_SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None

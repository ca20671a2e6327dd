"""Unified diffs: make them, check them, apply them inside a workspace with a backup.

Applying is all-or-nothing: every file's new text is computed (and every hunk's
context checked) before anything is written; each original goes to
``<workspace>/.elexirion/backups/<change_id>/<path>`` first, then the new text
replaces the file atomically (write to a temporary file, ``os.replace``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from pipelines._atomic import write_text_atomic

__all__ = ["FileDiff", "PatchError", "apply_changes", "apply_diff", "make_diff"]

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(ValueError):
    """A diff that does not apply (names the file and the hunk)."""


@dataclass(frozen=True, slots=True)
class FileDiff:
    file: str  # relative to the workspace
    diff: str
    description: str = ""


def make_diff(file: str, before: str, after: str) -> str:
    """A unified diff of one file (``a/<file>`` → ``b/<file>``)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{file}",
            tofile=f"b/{file}",
        )
    )


def apply_diff(original: str, diff: str, *, file: str = "<file>") -> str:
    """``original`` with the hunks of ``diff`` applied; raises :class:`PatchError`."""
    source = original.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0  # next unread line of ``source``
    lines = diff.splitlines(keepends=True)
    i = 0
    hunks = 0
    while i < len(lines):
        match = _HUNK.match(lines[i])
        i += 1
        if not match:
            continue
        hunks += 1
        start = int(match.group(1)) - (0 if match.group(2) == "0" else 1)
        if start < cursor:
            raise PatchError(f"{file}: hunk {hunks} overlaps the previous one")
        out.extend(source[cursor:start])
        cursor = start
        while i < len(lines) and not lines[i].startswith("@@"):
            line = lines[i]
            i += 1
            tag, body = line[:1], line[1:]
            if tag == "\\":  # "\ No newline at end of file"
                continue
            if tag in (" ", "-"):
                if cursor >= len(source) or source[cursor].rstrip("\r\n") != body.rstrip("\r\n"):
                    raise PatchError(
                        f"{file}: hunk {hunks} does not match line {cursor + 1} "
                        f"(expected {body.rstrip()!r})"
                    )
                if tag == " ":
                    out.append(source[cursor])
                cursor += 1
            elif tag == "+":
                out.append(body)
            elif line.strip() == "":
                continue
            else:
                raise PatchError(f"{file}: hunk {hunks} has a malformed line {line.rstrip()!r}")
    if hunks == 0:
        raise PatchError(f"{file}: the diff has no hunks")
    out.extend(source[cursor:])
    return "".join(out)


def apply_changes(workspace: str, changes: list[FileDiff], change_id: str) -> dict[str, object]:
    """Apply every diff inside ``workspace`` (all or nothing); returns what was written."""
    root = Path(workspace).resolve()
    if not re.fullmatch(r"[\w-]{1,64}", change_id):
        raise PatchError(f"bad change id {change_id!r}")
    planned: list[tuple[Path, str, str]] = []
    for change in changes:
        target = (root / change.file).resolve()
        if not target.is_relative_to(root) or root / ".elexirion" in target.parents:
            raise PatchError(f"{change.file}: outside the workspace {root}")
        if not target.is_file():
            raise PatchError(f"{change.file}: no such file in the workspace")
        before = target.read_text(encoding="utf-8")
        planned.append((target, before, apply_diff(before, change.diff, file=change.file)))
    backup_dir = root / ".elexirion" / "backups" / change_id
    for target, before, _ in planned:
        backup = backup_dir / target.relative_to(root)
        backup.parent.mkdir(parents=True, exist_ok=True)
        backup.write_text(before, encoding="utf-8")
    for target, _, after in planned:
        mode = target.stat().st_mode & 0o7777
        write_text_atomic(target, after)
        target.chmod(mode)  # an executable script stays executable
    return {
        "applied": [str(t.relative_to(root)) for t, _, _ in planned],
        "backup_dir": str(backup_dir),
    }

"""The ``static_analysis`` tool: ruff plus our own ``EL`` rules over Python files.

Both passes run concurrently (ruff in a subprocess, the ``ast`` rules in a worker
thread) and their findings are merged:

* Where both report the same concept on the same line, ours is kept because its
  message explains the consequence in review language: EL001 supersedes ruff's
  ``E722``/``BLE001``/``S110``/``S112``; EL004 supersedes ``B006``; EL005
  supersedes ``S307``/``S102``. When EL000 reports that a file does not parse,
  ruff's ``invalid-syntax`` entries for that file are dropped.
* In test files ruff's ``S101`` (assert) and ``PLR2004`` (magic numbers) are
  dropped: that is how tests are written.
* Non-Python source files get one ``EL900`` info finding each ("unsupported
  language"), so a reviewer never mistakes "not analysed" for "clean".

Result: ``{"findings": [...sorted by file, line], "files_analyzed": n,
"summary": {"error", "warning", "info"}, "unsupported": [{"file", "language"}]}``.
``files_analyzed`` counts the Python files checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._args import validate_arguments
from ._ast_rules import check_source, is_test_file
from ._ruff import run_ruff
from ._walk import walk_files
from .findings import Finding, summarize
from .sandbox import Workspace

__all__ = ["SUPERSEDED_BY", "UNSUPPORTED_LANGUAGES", "StaticAnalysisTool", "merge"]

SUPERSEDED_BY: Mapping[str, frozenset[str]] = {
    "EL001": frozenset({"E722", "BLE001", "S110", "S112"}),
    "EL004": frozenset({"B006"}),
    "EL005": frozenset({"S307", "S102"}),
}
_DROPPED_IN_TESTS = frozenset({"S101", "PLR2004"})

UNSUPPORTED_LANGUAGES: Mapping[str, str] = {
    ".js": "JavaScript",
    ".jsx": "JavaScript",
    ".mjs": "JavaScript",
    ".cjs": "JavaScript",
    ".ts": "TypeScript",
    ".tsx": "TypeScript",
    ".go": "Go",
    ".rs": "Rust",
    ".java": "Java",
    ".kt": "Kotlin",
    ".scala": "Scala",
    ".rb": "Ruby",
    ".ex": "Elixir",
    ".exs": "Elixir",
    ".erl": "Erlang",
    ".c": "C",
    ".h": "C",
    ".cc": "C++",
    ".cpp": "C++",
    ".cxx": "C++",
    ".hpp": "C++",
    ".cs": "C#",
    ".php": "PHP",
    ".swift": "Swift",
    ".lua": "Lua",
    ".pl": "Perl",
    ".sh": "Shell",
    ".dart": "Dart",
    ".hs": "Haskell",
    ".clj": "Clojure",
    ".zig": "Zig",
}


class StaticAnalysisTool:
    """``static_analysis``: lint a file or directory of the workspace (Python only)."""

    name = "static_analysis"
    description = (
        "Statically analyse Python code in the workspace with ruff and Elexirion's own "
        "rules (EL001 broad except that swallows, EL002 unguarded I/O, EL003 long "
        "function, EL004 mutable default, EL005 eval/exec, EL000 syntax error). Other "
        "languages are reported as EL900 'unsupported'. Returns {findings, "
        "files_analyzed, summary, unsupported}."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "default": ".", "description": "File or directory."},
            "max_function_lines": {"type": "integer", "minimum": 1, "default": 50},
            "include_ruff": {"type": "boolean", "default": True},
        },
        "additionalProperties": False,
    }

    async def run(self, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        """Analyse; raises ``ToolError`` (not_found, ruff_unavailable, ruff_failed, timeout)."""
        params = validate_arguments(self.name, self.parameters, args)
        target = workspace.resolve(params["path"], must_exist=True)
        files = await asyncio.to_thread(walk_files, workspace, target)
        python = [path for path in files if path.suffix == ".py"]
        others = [path for path in files if path.suffix.lower() in UNSUPPORTED_LANGUAGES]

        want_ruff = bool(params["include_ruff"] and python)
        try:
            async with asyncio.TaskGroup() as group:
                ours = group.create_task(
                    asyncio.to_thread(_check_files, python, workspace, params["max_function_lines"])
                )
                theirs = group.create_task(run_ruff(python, workspace)) if want_ruff else None
        except ExceptionGroup as failed:
            # Callers expect the tool's own ToolError, not a group wrapping it.
            raise failed.exceptions[0] from None
        ruff_findings = theirs.result() if theirs is not None else []

        unsupported = [
            {
                "file": workspace.relative(path),
                "language": UNSUPPORTED_LANGUAGES[path.suffix.lower()],
            }
            for path in others
        ]
        findings = merge(ours.result(), ruff_findings)
        findings.extend(
            Finding(
                item["file"],
                1,
                "EL900",
                "info",
                f"unsupported language: {item['language']}; only Python is analysed",
                source="elexirion",
            )
            for item in unsupported
        )
        findings.sort(key=Finding.sort_key)
        return {
            "findings": [finding.to_dict() for finding in findings],
            "files_analyzed": len(python),
            "summary": summarize(findings),
            "unsupported": unsupported,
        }


def merge(ours: Sequence[Finding], ruff: Sequence[Finding]) -> list[Finding]:
    """Our findings plus ruff's, minus ruff's that ours supersede (module docstring)."""
    covered: set[tuple[str, int, str]] = set()
    unparsable: set[str] = set()
    for finding in ours:
        if finding.rule == "EL000":
            unparsable.add(finding.file)
        for code in SUPERSEDED_BY.get(finding.rule, ()):
            covered.add((finding.file, finding.line, code))
    kept = list(ours)
    for finding in ruff:
        if (finding.file, finding.line, finding.rule) in covered:
            continue
        if finding.rule == "invalid-syntax" and finding.file in unparsable:
            continue
        if finding.rule in _DROPPED_IN_TESTS and is_test_file(finding.file):
            continue
        kept.append(finding)
    return kept


def _check_files(files: Sequence[Path], workspace: Workspace, max_lines: int) -> list[Finding]:
    findings: list[Finding] = []
    for path in files:
        rel = workspace.relative(path)
        try:
            source = path.read_bytes()
        except OSError as exc:
            findings.append(Finding(rel, 1, "EL000", "error", f"cannot read file: {exc}"))
            continue
        findings.extend(check_source(source, rel, max_function_lines=max_lines))
    return findings

"""What the analysis tools report: one :class:`Finding` per problem at a place in a file.

Findings are frozen dataclasses so they hash (for de-duplication) and pickle
(they travel inside step results). :meth:`Finding.to_dict` is the JSON shape a
pipeline step sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["SEVERITIES", "Finding", "Severity", "summarize"]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: ``rule`` fired at ``file:line`` (``file`` relative to the workspace).

    ``column`` is 1-based (0 when unknown); ``source`` says who found it:
    ``"ruff"``, ``"ast"`` (our own rules) or ``"elexirion"`` (tool-level notes such
    as an unsupported language).
    """

    file: str
    line: int
    rule: str
    severity: Severity
    message: str
    column: int = 0
    source: str = "ast"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form used in tool results."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "source": self.source,
        }

    def location(self) -> str:
        """``"file:line"``, the form reviewers paste into comments."""
        return f"{self.file}:{self.line}"

    def sort_key(self) -> tuple[str, int, int, str]:
        """Order by file, line, column, then rule, so results are stable."""
        return (self.file, self.line, self.column, self.rule)


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    """Count findings per severity; every severity is present, zero if none."""
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts

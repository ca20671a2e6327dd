"""Finding: its JSON shape, location, ordering and per-severity summary."""

from __future__ import annotations

import json
import pickle

import pytest

from pipelines.tools import Finding, summarize


def test_to_dict_is_json() -> None:
    """to_dict carries every field and is JSON-serialisable."""
    finding = Finding("a.py", 3, "EL001", "warning", "swallowed", column=5)
    assert finding.to_dict() == {
        "file": "a.py",
        "line": 3,
        "column": 5,
        "rule": "EL001",
        "severity": "warning",
        "message": "swallowed",
        "source": "ast",
    }
    json.dumps(finding.to_dict())


def test_location() -> None:
    """location() is file:line."""
    assert (
        Finding("pkg/a.py", 12, "F401", "warning", "m", source="ruff").location() == "pkg/a.py:12"
    )


def test_frozen_and_picklable() -> None:
    """Findings are immutable and survive pickling."""
    finding = Finding("a.py", 1, "EL005", "error", "eval")
    with pytest.raises(AttributeError):
        finding.line = 2  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(finding)) == finding


def test_summarize_counts_every_severity() -> None:
    """summarize has a count for each severity, zero included."""
    findings = [
        Finding("a.py", 1, "X", "error", "m"),
        Finding("a.py", 2, "Y", "error", "m"),
        Finding("b.py", 1, "Z", "info", "m"),
    ]
    assert summarize(findings) == {"error": 2, "warning": 0, "info": 1}
    assert sorted(findings, key=Finding.sort_key)[0].location() == "a.py:1"

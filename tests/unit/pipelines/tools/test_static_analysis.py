"""static_analysis: planted defects found at file:line, EL rules, merging, and failures."""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import SandboxError, ToolError
from pipelines.tools import StaticAnalysisTool, Workspace
from pipelines.tools import _ruff as ruff_module

SAMPLE = Path(__file__).resolve().parents[4] / "examples" / "sample_project"


def expected_findings() -> set[tuple[str, int, str]]:
    """The planted defects as listed in EXPECTED_FINDINGS.md."""
    text = (SAMPLE / "EXPECTED_FINDINGS.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`:]+):(\d+)` \| (\w+) \|", text, flags=re.MULTILINE)
    return {(file, int(line), rule) for file, line, rule in rows}


def write(root: Path, rel: str, source: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")


async def analyse(ws: Workspace, **args: Any) -> dict[str, Any]:
    result = await StaticAnalysisTool().run(args, ws)
    json.dumps(result)  # must be JSON-serialisable
    return result


def triples(result: dict[str, Any]) -> set[tuple[str, int, str]]:
    return {(f["file"], f["line"], f["rule"]) for f in result["findings"]}


@pytest.fixture
def sample(tmp_path: Path) -> Workspace:
    return Workspace(shutil.copytree(SAMPLE, tmp_path / "sample"))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws", create=True)


async def test_expected_findings_list_is_complete() -> None:
    """EXPECTED_FINDINGS.md lists every planted defect (ten entries)."""
    assert len(expected_findings()) == 10


async def test_sample_project_findings_are_exactly_the_planted_defects(sample: Workspace) -> None:
    """Every planted defect is found at its file:line, and nothing else is reported."""
    result = await analyse(sample)
    assert triples(result) == expected_findings()
    assert result["files_analyzed"] == 3
    assert result["unsupported"] == [{"file": "legacy.js", "language": "JavaScript"}]
    assert result["summary"] == {"error": 2, "warning": 6, "info": 2}


async def test_findings_are_sorted_and_well_formed(sample: Workspace) -> None:
    """Findings are sorted by file then line and carry every documented key."""
    findings = (await analyse(sample))["findings"]
    assert [(f["file"], f["line"]) for f in findings] == sorted(
        (f["file"], f["line"]) for f in findings
    )
    for finding in findings:
        assert set(finding) == {"file", "line", "column", "rule", "severity", "message", "source"}
        assert finding["severity"] in {"error", "warning", "info"}
        assert finding["source"] in {"ruff", "ast", "elexirion"}


async def test_without_ruff_only_our_rules_run(sample: Workspace) -> None:
    """include_ruff=false reports the EL findings only (no F401/E711)."""
    result = await analyse(sample, include_ruff=False)
    assert triples(result) == {t for t in expected_findings() if t[2].startswith("EL")}


async def test_max_function_lines_is_honoured(sample: Workspace) -> None:
    """A higher max_function_lines silences EL003 for the 60-line function."""
    result = await analyse(sample, include_ruff=False, max_function_lines=60)
    assert ("app.py", 61, "EL003") not in triples(result)


async def test_single_file_path(sample: Workspace) -> None:
    """path may name one file; only it is analysed."""
    result = await analyse(sample, path="utils.py")
    assert result["files_analyzed"] == 1
    assert triples(result) == {("utils.py", 10, "EL001"), ("utils.py", 19, "EL002")}


async def test_syntax_error_is_a_finding(ws: Workspace) -> None:
    """A file that does not parse yields one EL000 error with its line, and no crash."""
    write(ws.root, "broken.py", "x = 1\n\ndef f(:\n    pass\n")
    write(ws.root, "ok.py", "y = 2\n")
    result = await analyse(ws)
    assert triples(result) == {("broken.py", 3, "EL000")}
    assert result["findings"][0]["severity"] == "error"
    assert result["files_analyzed"] == 2


async def test_nul_byte_source_is_el000(ws: Workspace) -> None:
    """A Python file with NUL bytes is reported as EL000, not a crash."""
    (ws.root / "nul.py").write_bytes(b"x = 1\x00\n")
    result = await analyse(ws, include_ruff=False)
    assert [f["rule"] for f in result["findings"]] == ["EL000"]


async def test_unsupported_languages_are_reported(ws: Workspace) -> None:
    """Each non-Python source file gets one EL900 info finding naming its language."""
    write(ws.root, "main.go", "package main\n")
    write(ws.root, "lib/app.ex", "defmodule App do\nend\n")
    write(ws.root, "notes.txt", "not source\n")
    result = await analyse(ws)
    assert result["files_analyzed"] == 0
    assert result["unsupported"] == [
        {"file": "lib/app.ex", "language": "Elixir"},
        {"file": "main.go", "language": "Go"},
    ]
    messages = [f["message"] for f in result["findings"]]
    assert messages == [
        "unsupported language: Elixir; only Python is analysed",
        "unsupported language: Go; only Python is analysed",
    ]
    assert result["summary"] == {"error": 0, "warning": 0, "info": 2}


async def test_skipped_directories_are_not_analysed(ws: Workspace) -> None:
    """.venv, node_modules, __pycache__ and .git are never analysed."""
    for skipped in (".venv", "node_modules", "__pycache__", ".git"):
        write(ws.root, f"{skipped}/bad.py", "eval('1')\n")
    write(ws.root, "node_modules/x.js", "var a;\n")
    result = await analyse(ws)
    assert result["files_analyzed"] == 0
    assert result["findings"] == []


async def test_ruff_duplicates_are_superseded(ws: Workspace) -> None:
    """Ours replace ruff's B006/E722/S110/S307 on the same line; other ruff findings stay."""
    write(
        ws.root,
        "m.py",
        """\
        def f(x=[]):
            try:
                return eval(x)
            except:
                pass


        def g(x):
            try:
                return x == None
            except:
                raise
        """,
    )
    rules = triples(await analyse(ws))
    assert {("m.py", 1, "EL004"), ("m.py", 3, "EL005"), ("m.py", 4, "EL001")} <= rules
    assert not {r for r in rules if r[2] in {"B006", "S307", "S110", "BLE001"}}
    assert ("m.py", 4, "E722") not in rules
    assert ("m.py", 10, "E711") in rules
    assert not {r for r in rules if r[1] == 11}  # a bare except that re-raises swallows nothing


async def test_asserts_are_fine_in_tests_only(ws: Workspace) -> None:
    """ruff's S101 is dropped in test files but kept elsewhere."""
    write(ws.root, "tests/test_x.py", "def test_a():\n    assert 1 + 1 == 2\n")
    write(ws.root, "lib.py", "def f(x):\n    assert x\n    return x\n")
    rules = triples(await analyse(ws))
    assert ("lib.py", 2, "S101") in rules
    assert not any(r[0].startswith("tests/") for r in rules)


async def test_missing_path_and_escape(ws: Workspace) -> None:
    """A missing path is not_found; a path outside the workspace is SandboxError."""
    with pytest.raises(ToolError) as info:
        await analyse(ws, path="missing")
    assert info.value.code == "not_found"
    with pytest.raises(SandboxError):
        await analyse(ws, path="../")


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ({"max_function_lines": 0}, "max_function_lines"),
        ({"include_ruff": "yes"}, "include_ruff"),
        ({"path": ["a"]}, "path"),
        ({"paths": "a"}, "paths"),
    ],
)
async def test_invalid_arguments(ws: Workspace, args: dict[str, Any], argument: str) -> None:
    """Bad arguments raise ToolError(invalid_arguments) naming the argument."""
    with pytest.raises(ToolError) as info:
        await analyse(ws, **args)
    assert info.value.code == "invalid_arguments"
    assert repr(argument) in str(info.value)


# ------------------------------------------------------------- ruff failures


@pytest.fixture
def one_file(ws: Workspace) -> Workspace:
    write(ws.root, "a.py", "x = 1\n")
    return ws


async def test_ruff_missing_module(one_file: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ruff module that is not installed raises ToolError(ruff_unavailable) with a fix."""
    monkeypatch.setattr(ruff_module, "RUFF_COMMAND", (sys.executable, "-m", "ruff_not_installed"))
    with pytest.raises(ToolError) as info:
        await analyse(one_file)
    assert info.value.code == "ruff_unavailable"
    assert "include_ruff=false" in str(info.value)


async def test_ruff_missing_executable(
    one_file: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ruff command that cannot be started raises ToolError(ruff_unavailable)."""
    monkeypatch.setattr(ruff_module, "RUFF_COMMAND", ("/nonexistent/bin/ruff",))
    with pytest.raises(ToolError) as info:
        await analyse(one_file)
    assert info.value.code == "ruff_unavailable"


async def test_ruff_missing_is_skipped_without_ruff(
    one_file: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """include_ruff=false never starts ruff, so a missing ruff does not matter."""
    monkeypatch.setattr(ruff_module, "RUFF_COMMAND", ("/nonexistent/bin/ruff",))
    assert (await analyse(one_file, include_ruff=False))["files_analyzed"] == 1


async def test_ruff_crash(one_file: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """ruff exiting non-zero raises ToolError(ruff_failed) with its stderr."""
    crash = "import sys; sys.stderr.write('boom'); sys.exit(2)"
    monkeypatch.setattr(ruff_module, "RUFF_COMMAND", (sys.executable, "-c", crash))
    with pytest.raises(ToolError, match="boom") as info:
        await analyse(one_file)
    assert info.value.code == "ruff_failed"


async def test_ruff_garbage_report(one_file: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable ruff report raises ToolError(ruff_failed)."""
    monkeypatch.setattr(ruff_module, "RUFF_COMMAND", (sys.executable, "-c", "print('not json')"))
    with pytest.raises(ToolError) as info:
        await analyse(one_file)
    assert info.value.code == "ruff_failed"


async def test_ruff_timeout(one_file: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """ruff overrunning its deadline raises ToolError(timeout), retryable."""
    monkeypatch.setattr(
        ruff_module, "RUFF_COMMAND", (sys.executable, "-c", "import time; time.sleep(30)")
    )
    monkeypatch.setattr(ruff_module, "RUFF_TIMEOUT_S", 0.0)  # expires at once: no real wait
    with pytest.raises(ToolError) as info:
        await analyse(one_file)
    assert info.value.code == "timeout"
    assert info.value.retryable is True


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("E999", "error"),
        ("F821", "error"),
        ("F401", "warning"),
        ("S608", "error"),
        ("S101", "warning"),
        ("B023", "error"),
        ("B904", "warning"),
        ("E711", "warning"),
        ("E501", "info"),
        ("W291", "info"),
        ("PLR0915", "info"),
        ("PLE1142", "error"),
        ("UP006", "info"),
        ("RUF012", "warning"),
        ("XYZ1", "warning"),
    ],
)
def test_ruff_severity_mapping(code: str, severity: str) -> None:
    """ruff codes map to severities by longest prefix, defaulting to warning."""
    assert ruff_module.severity_of(code) == severity

"""Running ruff as a subprocess and turning its JSON report into :class:`Finding` objects.

ruff runs as ``python -m ruff`` from the interpreter running us (ruff is a runtime
dependency), with ``--isolated`` so the analysed project's own configuration can
neither silence rules nor point ruff at other files, and ``--no-cache`` so nothing
is written into the workspace.

Severity mapping (ruff itself reports every violation as "error"; we grade them,
longest code prefix wins):

* **error**: ``E9`` (cannot parse), ``F`` (pyflakes: undefined names, broken
  format strings...), ``S`` (bandit security checks), ``B`` (bugbear: likely
  bugs), ``PLE`` (pylint errors), ``T10`` (debugger left in).
* **warning**: unused code (``F401``, ``F811``, ``F841``, ``F541``), star imports,
  ``E7`` (``== None``, bare ``except``, ...), ``BLE``, ``ASYNC``, ``PLW``,
  ``RUF``, ``DTZ``, ``S101`` (assert is stripped under ``-O``), ``S311``, and the
  style-ish bugbear codes ``B007``, ``B009``, ``B010``, ``B904``, ``B905``; any
  code not listed.
* **info**: other ``E`` and ``W`` (layout), ``PLR``/``PLC`` (refactoring), ``UP``,
  ``SIM``, ``C4``, ``PIE`` (modernisation and simplification).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.errors import ToolError

from ._proc import run_process
from .findings import Finding, Severity
from .sandbox import Workspace

__all__ = ["RUFF_COMMAND", "RUFF_SELECT", "RUFF_TIMEOUT_S", "run_ruff", "severity_of"]

# The command prefix; tests replace it to simulate a missing ruff.
RUFF_COMMAND: tuple[str, ...] = (sys.executable, "-m", "ruff")
RUFF_SELECT = "E,F,W,B,S,BLE,PL,UP,SIM,ASYNC,RUF,C4,PIE,T10,DTZ"
RUFF_TIMEOUT_S = 120.0
# Keep each command line well below ARG_MAX on any platform.
_BATCH = 200

_SEVERITY_BY_PREFIX: dict[str, Severity] = {
    "E": "info",
    "E7": "warning",
    "E9": "error",
    "W": "info",
    "F": "error",
    "F401": "warning",
    "F403": "warning",
    "F405": "warning",
    "F541": "warning",
    "F811": "warning",
    "F841": "warning",
    "S": "error",
    "S101": "warning",
    "S311": "warning",
    "B": "error",
    "B007": "warning",
    "B009": "warning",
    "B010": "warning",
    "B904": "warning",
    "B905": "warning",
    "BLE": "warning",
    "PLE": "error",
    "PLW": "warning",
    "PLR": "info",
    "PLC": "info",
    "UP": "info",
    "SIM": "info",
    "C4": "info",
    "PIE": "info",
    "T10": "error",
    "ASYNC": "warning",
    "RUF": "warning",
    "DTZ": "warning",
}


def severity_of(code: str) -> Severity:
    """Our severity for a ruff rule code (see the module docstring)."""
    for end in range(len(code), 0, -1):
        severity = _SEVERITY_BY_PREFIX.get(code[:end])
        if severity is not None:
            return severity
    return "warning"


async def run_ruff(files: Sequence[Path], workspace: Workspace) -> list[Finding]:
    """Check ``files`` (absolute, inside ``workspace``) with ruff.

    Raises ``ToolError`` with code ``ruff_unavailable`` (ruff cannot be started),
    ``timeout`` or ``ruff_failed`` (unexpected exit or unreadable report).
    """
    findings: list[Finding] = []
    # Batches run one after another: ruff already uses every core for one batch.
    for start in range(0, len(files), _BATCH):
        report = await _run_batch(files[start : start + _BATCH], workspace)
        findings.extend(_to_finding(entry, workspace) for entry in report)
    return findings


async def _run_batch(files: Sequence[Path], workspace: Workspace) -> list[dict[str, Any]]:
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    argv = [
        *RUFF_COMMAND,
        "check",
        "--output-format",
        "json",
        "--no-cache",
        "--isolated",
        "--select",
        RUFF_SELECT,
        # Same Python as the ast pass, so both agree on what is valid syntax.
        "--target-version",
        version,
        "--line-length",
        "100",
        "--exit-zero",
        "--",
        *(str(path) for path in files),
    ]
    try:
        outcome = await run_process(argv, cwd=workspace.root, timeout_s=RUFF_TIMEOUT_S)
    except OSError as exc:
        raise _unavailable(str(exc)) from exc
    if outcome.timed_out:
        raise ToolError(
            f"ruff did not finish within {RUFF_TIMEOUT_S:g}s", code="timeout", retryable=True
        )
    stderr = outcome.stderr.decode("utf-8", errors="replace").strip()
    if outcome.exit_code != 0:
        if "No module named" in stderr:
            raise _unavailable(stderr)
        raise ToolError(
            f"ruff exited with code {outcome.exit_code}: {stderr[-2000:]}", code="ruff_failed"
        )
    try:
        report = json.loads(outcome.stdout or b"[]")
    except json.JSONDecodeError as exc:
        raise ToolError(f"ruff printed an unreadable report: {exc}", code="ruff_failed") from exc
    if not isinstance(report, list):
        raise ToolError("ruff printed a report that is not a list", code="ruff_failed")
    return report


def _unavailable(detail: str) -> ToolError:
    return ToolError(
        f"ruff is not available to {' '.join(RUFF_COMMAND)} ({detail}); install it "
        "('pip install \"ruff>=0.17,<0.18\"') or call static_analysis with include_ruff=false",
        code="ruff_unavailable",
    )


def _to_finding(entry: dict[str, Any], workspace: Workspace) -> Finding:
    code = entry.get("code") or "invalid-syntax"
    location = entry.get("location") or {}
    rel = workspace.relative(Path(entry["filename"]))
    return Finding(
        file=rel,
        line=int(location.get("row") or 1),
        column=int(location.get("column") or 0),
        rule=code,
        severity="error" if code == "invalid-syntax" else severity_of(code),
        message=str(entry.get("message", "")),
        source="ruff",
    )

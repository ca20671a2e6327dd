"""The analysis and refactoring agents.

``analysis`` runs ``code_analysis`` (static analysis tools + an LLM review) on the
paths the request names, with a focus (quality, security, performance,
architecture) chosen from the request's words. Tool findings are facts and are
always kept; the model's findings are added when they cite a file and line.
The findings become the session's context, which is what ``refactoring`` works from.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, ClassVar

from actors.agents.base import AgentBase, AgentInputError, findings_from, mentioned_paths
from actors.agents.fixes import fix_file
from actors.agents.models import AgentRequest, AgentResponse, Finding
from actors.agents.patches import PatchError, apply_diff, make_diff

__all__ = ["AnalysisAgent", "RefactoringAgent", "focus_of", "proposed_change"]

_FOCUS_WORDS = {
    "security": r"secur|vulnerab|inject|exploit|xss|csrf|secret|auth|unsafe|owasp|cve",
    "performance": r"perform|slow|fast|speed|latenc|memory|cpu|optimi[sz]|bottleneck|n\+1",
    "architecture": r"architect|design|structure|coupling|modular|layer|dependenc|cohesion",
}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def focus_of(text: str) -> str:
    """The analysis sub-type a request asks for (``quality`` unless it says otherwise)."""
    lowered = text.lower()
    for focus, pattern in _FOCUS_WORDS.items():
        if re.search(pattern, lowered):
            return focus
    return "quality"


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (_SEVERITY_ORDER[f.severity], f.file or "", f.line or 0),
    )


class AnalysisAgent(AgentBase):
    name = "analysis"
    capabilities: ClassVar[dict[str, float]] = {"analysis": 1.0, "general": 0.2}

    async def handle(self, request: AgentRequest) -> AgentResponse:
        started = time.perf_counter()
        paths = mentioned_paths(request.text, request.workspace)
        previous = request.context.get("last_analysis") or {}
        path = paths[0] if paths else str(previous.get("path") or ".")
        focus = focus_of(request.text)
        outcome = await self.run_pipeline(
            "code_analysis",
            {
                "project_dir": request.workspace,
                "path": path,
                "focus": focus,
                "context": self.context_text(request),
            },
            request,
        )
        tool = outcome.results.get("static_analysis") or {}
        review = outcome.data("review")
        found = findings_from(tool.get("findings"))
        known = {(f.file, f.line) for f in found}
        root = Path(request.workspace)
        found += [  # the model's own findings, when they cite a real file and line
            f
            for f in findings_from(review.get("findings"))
            if f.file and f.line and (f.file, f.line) not in known and (root / f.file).is_file()
        ]
        found = _sorted(found)
        counts = {s: sum(f.severity == s for f in found) for s in ("error", "warning", "info")}
        summary = str(review.get("summary") or outcome.text("review") or "").strip()
        headline = (
            f"{focus.capitalize()} analysis of {path}: {len(found)} finding(s) "
            f"({counts['error']} error, {counts['warning']} warning, {counts['info']} info)."
        )
        recommendations = [str(r) for r in review.get("recommendations") or [] if str(r).strip()]
        return self.respond(
            request,
            started,
            type="analysis",
            summary=f"{headline} {summary}".strip(),
            findings=found,
            recommendations=recommendations[:10],
            confidence=0.6 if outcome.offline else 0.85,
            next_actions=[
                "now refactor it based on that analysis",
                f"write tests for {path}" if Path(path).suffix else "write tests for this code",
                "explain the most severe finding",
            ],
            pipeline_used=outcome.pipeline,
            cost_usd=outcome.cost_usd,
            details={"focus": focus, "path": path, "run_id": outcome.run_id, "counts": counts},
            context_update={
                "findings": [f.model_dump() for f in found],
                "last_analysis": {
                    "path": path,
                    "focus": focus,
                    "response_id": request.response_id,
                },
            },
        )


def proposed_change(
    workspace: str, findings: list[Finding], model_changes: list[dict[str, Any]]
) -> tuple[list[dict[str, str]], list[str]]:
    """Diffs to offer: the model's diffs that apply cleanly, else mechanical fixes.

    Returns ``(diffs, notes)``; each diff is ``{file, diff, description}``.
    """
    root = Path(workspace).resolve()
    diffs: list[dict[str, str]] = []
    notes: list[str] = []
    covered: set[str] = set()
    for change in model_changes:
        file, diff = str(change.get("file") or ""), str(change.get("diff") or "")
        target = (root / file).resolve()
        if not diff or not target.is_relative_to(root) or not target.is_file():
            continue
        try:
            apply_diff(target.read_text(encoding="utf-8"), diff, file=file)
        except (PatchError, UnicodeDecodeError) as exc:
            notes.append(f"dropped the model's diff for {file}: {exc}")
            continue
        diffs.append({"file": file, "diff": diff, "description": str(change.get("change", ""))})
        covered.add(file)
    by_file: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.file and finding.file not in covered:
            by_file.setdefault(finding.file, []).append(finding)
    for file, items in sorted(by_file.items()):
        target = (root / file).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            continue
        before = target.read_text(encoding="utf-8")
        after, done = fix_file(before, items)
        if done:
            diffs.append(
                {
                    "file": file,
                    "diff": make_diff(file, before, after),
                    "description": "; ".join(
                        f"{f.location()} {f.rule}: {what}" for f, what in done
                    ),
                }
            )
    return diffs, notes


class RefactoringAgent(AgentBase):
    name = "refactoring"
    capabilities: ClassVar[dict[str, float]] = {
        "refactoring": 1.0,
        "code": 0.5,
        "analysis": 0.2,
    }

    async def handle(self, request: AgentRequest) -> AgentResponse:
        started = time.perf_counter()
        findings = findings_from(request.context.get("findings"))
        paths = mentioned_paths(request.text, request.workspace)
        if paths:
            findings = [f for f in findings if any(_under(f.file, p) for p in paths)] or findings
        if not findings:
            target = paths[0] if paths else "<file or directory>"
            return self.respond(
                request,
                started,
                type="refactoring",
                summary="There are no analysis findings in this conversation to refactor from.",
                suggestion=f'Analyse the code first, e.g. "analyze the code in {target}".',
                confidence=0.9,
                next_actions=[f"analyze the code in {target}"] if paths else [],
            )
        outcome = await self.run_pipeline(
            "refactoring",
            {
                "project_dir": request.workspace,
                "request": request.text,
                "findings": [f.model_dump(exclude_none=True) for f in findings],
                "context": self.context_text(request),
            },
            request,
        )
        plan = outcome.data("plan")
        diffs, notes = proposed_change(request.workspace, findings, list(plan.get("changes") or []))
        change_id = request.response_id
        summary = str(plan.get("summary") or outcome.text("plan")).strip()
        fixed = sum(d["description"].count(":") for d in diffs)
        headline = (
            f"Refactoring plan for {len(findings)} finding(s) from the analysis; "
            f"{len(diffs)} file diff(s) ready ({fixed} mechanical fix(es) included)."
        )
        recommendations = [str(r) for r in plan.get("recommendations") or []]
        recommendations += [
            f"{f.location()} {f.rule or ''}: {f.message}".replace("  ", " ")
            for f in findings
            if not any(f.location() in d["description"] for d in diffs)
        ][:10]
        return self.respond(
            request,
            started,
            type="refactoring",
            summary=f"{headline} {summary}".strip(),
            findings=findings,
            recommendations=recommendations,
            confidence=0.55 if outcome.offline else 0.8,
            next_actions=(["apply the change", "discard the change"] if diffs else [])
            + ["write tests for the refactored code"],
            pipeline_used=outcome.pipeline,
            cost_usd=outcome.cost_usd,
            details={"diffs": diffs, "change_id": change_id, "notes": notes},
            context_update={"pending_change": {"id": change_id, "diffs": diffs}} if diffs else {},
        )


def _under(file: str | None, path: str) -> bool:
    if not file:
        return False
    return path in (".", file) or file.startswith(path.rstrip("/") + "/")


def require_path(paths: list[str], what: str) -> str:
    """The first named path, or an :class:`AgentInputError` saying what to name."""
    if not paths:
        raise AgentInputError(f"name the {what} inside the workspace, e.g. `src/module.py`")
    return paths[0]

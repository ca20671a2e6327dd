"""The code and testing agents.

``code`` proposes unified diffs and applies them only after the user confirms
(the pending change lives in the session's context; the originals are backed up).
``testing`` writes pytest tests for a module and, when asked, runs them in a
subprocess with a timeout, inside the workspace.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from actors.agents.analysis import proposed_change, require_path
from actors.agents.base import AgentBase, AgentInputError, findings_from, mentioned_paths
from actors.agents.models import AgentRequest, AgentResponse, Finding
from actors.agents.patches import FileDiff, PatchError, apply_changes
from actors.agents.router import is_confirmation

__all__ = ["CodeAgent", "TestingAgent"]

_DISCARD = re.compile(r"^\s*(no|nope|discard|cancel|reject|drop|don'?t apply)\b", re.IGNORECASE)
_RUN = re.compile(r"\b(run|execute|and check|verify|make sure they pass)\b", re.IGNORECASE)
MAX_FILE_CHARS = 20_000
TEST_TIMEOUT_S = 120.0


class CodeAgent(AgentBase):
    name = "code"
    capabilities: ClassVar[dict[str, float]] = {"code": 1.0, "refactoring": 0.6, "testing": 0.3}

    async def handle(self, request: AgentRequest) -> AgentResponse:
        started = time.perf_counter()
        pending = request.context.get("pending_change")
        if pending and is_confirmation(request.text):
            return self._apply(request, pending, started)
        if pending and _DISCARD.match(request.text):
            return self.respond(
                request,
                started,
                type="code",
                summary=f"Discarded the pending change {pending.get('id')}; nothing was written.",
                confidence=1.0,
                context_update={"pending_change": None},
            )
        paths = [p for p in mentioned_paths(request.text, request.workspace) if Path(p).suffix]
        findings = findings_from(request.context.get("findings"))
        if paths:
            findings = [f for f in findings if f.file in paths]
        outcome = await self.run_pipeline(
            "code_change",
            {
                "project_dir": request.workspace,
                "request": request.text,
                "files": _numbered_sources(request.workspace, paths),
                "findings": [f.model_dump(exclude_none=True) for f in findings],
                "context": self.context_text(request),
            },
            request,
        )
        data = outcome.data("change")
        diffs, notes = proposed_change(request.workspace, findings, list(data.get("changes") or []))
        summary = str(data.get("summary") or outcome.text("change")).strip()
        if not diffs:
            headline = (
                "No applicable diff: the offline provider writes no new code, and none of "
                "the findings in this conversation has a mechanical fix."
                if outcome.offline
                else "The model proposed no diff that applies to the current files."
            )
            return self.respond(
                request,
                started,
                type="code",
                summary=f"{headline} {summary}".strip(),
                confidence=0.3,
                pipeline_used=outcome.pipeline,
                cost_usd=outcome.cost_usd,
                details={"diffs": [], "notes": notes},
            )
        return self.respond(
            request,
            started,
            type="code",
            summary=f'{len(diffs)} file diff(s) proposed; say "apply the change" to write '
            f"them (the originals are backed up). {summary}".strip(),
            findings=findings,
            confidence=0.55 if outcome.offline else 0.8,
            next_actions=["apply the change", "discard the change"],
            pipeline_used=outcome.pipeline,
            cost_usd=outcome.cost_usd,
            details={"diffs": diffs, "change_id": request.response_id, "notes": notes},
            context_update={"pending_change": {"id": request.response_id, "diffs": diffs}},
        )

    def _apply(
        self, request: AgentRequest, pending: dict[str, Any], started: float
    ) -> AgentResponse:
        changes = [
            FileDiff(str(d["file"]), str(d["diff"]), str(d.get("description", "")))
            for d in pending.get("diffs", [])
        ]
        try:
            applied = apply_changes(request.workspace, changes, str(pending.get("id")))
        except PatchError as exc:
            raise AgentInputError(f"the pending change no longer applies: {exc}") from None
        files = list(applied["applied"])  # type: ignore[call-overload]
        return self.respond(
            request,
            started,
            type="code",
            summary=f"Applied the change to {len(files)} file(s): {', '.join(files)}. "
            f"Originals backed up in {applied['backup_dir']}.",
            confidence=1.0,
            next_actions=["write tests for the changed code", "analyze the code again"],
            details={**applied, "change_id": pending.get("id")},
            context_update={
                "pending_change": None,
                "last_applied": {"id": pending.get("id"), **applied},
                "findings": [],
            },
        )


def _numbered_sources(workspace: str, paths: list[str]) -> str:
    root = Path(workspace).resolve()
    parts = []
    for path in paths[:3]:
        target = root / path
        if target.is_file():
            text = target.read_text(encoding="utf-8", errors="replace")[:MAX_FILE_CHARS]
            numbered = "\n".join(f"{i:5} {line}" for i, line in enumerate(text.splitlines(), 1))
            parts.append(f"--- {path}\n{numbered}")
    return "\n\n".join(parts)


class TestingAgent(AgentBase):
    __test__ = False  # not a pytest class
    name = "testing"
    capabilities: ClassVar[dict[str, float]] = {"testing": 1.0, "code": 0.3}

    async def handle(self, request: AgentRequest) -> AgentResponse:
        started = time.perf_counter()
        paths = [p for p in mentioned_paths(request.text, request.workspace) if p.endswith(".py")]
        last = str((request.context.get("last_analysis") or {}).get("path") or "")
        if not paths and last.endswith(".py"):
            paths = [last]
        module = require_path(paths, "Python module to test")
        outcome = await self.run_pipeline(
            "test_generation",
            {
                "project_dir": request.workspace,
                "module": module,
                "run_tests": False,
                "context": self.context_text(request),
            },
            request,
        )
        blocks = (outcome.results.get("write_tests") or {}).get("code_blocks") or []
        code = next((b for b in blocks if isinstance(b, str) and "def test_" in b), None)
        origin = "model"
        if code is None:
            code, origin = smoke_tests(Path(request.workspace) / module), "template"
        test_file = Path(request.workspace) / ".elexirion" / "generated_tests"
        test_file = test_file / f"test_{Path(module).stem}.py"
        details: dict[str, Any] = {"module": module, "code": code, "origin": origin}
        findings: list[Finding] = []
        summary = (
            f"Wrote {code.count('def test_')} pytest test(s) for {module} "
            f"({'by the model' if origin == 'model' else 'from its structure: offline template'})."
        )
        if _RUN.search(request.text):
            run = await run_pytest(test_file, code, Path(request.workspace) / module)
            details.update(test_file=str(test_file), run=run)
            findings = [
                Finding(message=line, file=str(test_file.name), severity="error", rule="pytest")
                for line in run["failures"]
            ]
            summary += f" Ran them: {run['verdict']}."
        return self.respond(
            request,
            started,
            type="testing",
            summary=summary,
            findings=findings,
            confidence=0.75 if origin == "model" else 0.5,
            next_actions=[] if "run" in details else [f"write and run tests for {module}"],
            pipeline_used=outcome.pipeline,
            cost_usd=outcome.cost_usd,
            details=details,
        )


def smoke_tests(module_path: Path) -> str:
    """Tests a module's structure supports without a model: it imports, its public
    functions and classes exist and are callable."""
    try:
        tree = ast.parse(module_path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as exc:
        raise AgentInputError(f"cannot read {module_path.name} as Python: {exc}") from None
    names = [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not n.name.startswith("_")
    ]
    return (
        f'"""Smoke tests for {module_path.name}, generated from its structure (no LLM)."""\n\n'
        "import importlib.util\nimport sys\nfrom pathlib import Path\n\nimport pytest\n\n"
        f"MODULE = Path({str(module_path.resolve())!r})\n\n\n"
        "@pytest.fixture(scope='module')\ndef module():\n"
        "    sys.path.insert(0, str(MODULE.parent))\n"
        "    spec = importlib.util.spec_from_file_location(MODULE.stem, MODULE)\n"
        "    loaded = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(loaded)\n"
        "    return loaded\n\n\n"
        "def test_module_imports(module):\n"
        '    """The module imports without error."""\n'
        "    assert module.__name__ == MODULE.stem\n\n\n"
        f"@pytest.mark.parametrize('name', {names!r})\n"
        "def test_public_name_is_callable(module, name):\n"
        '    """Every public function and class is defined and callable."""\n'
        "    assert callable(getattr(module, name))\n"
    )


def _write_tests(test_file: Path, code: str) -> None:
    test_file.parent.mkdir(parents=True, exist_ok=True)
    # Its own (empty) config: the workspace's pytest settings do not apply to it.
    (test_file.parent / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    test_file.write_text(code, encoding="utf-8")


async def run_pytest(test_file: Path, code: str, module_path: Path) -> dict[str, Any]:
    """Write ``code`` to ``test_file`` and run pytest on it (own rootdir, timeout)."""
    await asyncio.to_thread(_write_tests, test_file, code)
    env = {**os.environ, "PYTHONPATH": str(module_path.parent.resolve())}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:cacheprovider",
        str(test_file),
        cwd=str(test_file.parent),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    timed_out = False
    try:
        output, _ = await asyncio.wait_for(process.communicate(), TEST_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        timed_out = True
    text = output.decode("utf-8", errors="replace")
    tail = text.strip().splitlines()[-1:] or [""]
    return {
        "exit_code": process.returncode,
        "timed_out": timed_out,
        "verdict": f"timed out after {TEST_TIMEOUT_S:.0f} s" if timed_out else tail[0],
        "failures": [line for line in text.splitlines() if line.startswith("FAILED")],
        "output_tail": "\n".join(text.splitlines()[-30:]),
    }

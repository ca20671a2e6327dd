"""Offline Genesis: a request's type from keywords, and a pipeline template per type.

Used when no LLM is available: the pipeline is not drafted by a model but built
from a fixed, tested template for the kind of work the request asks for. Each
template is a plain ``{"workflow": {...}}`` mapping with declared inputs; the
request text goes into the description and into the prompts as the standing goal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["KINDS", "classify", "template"]

#: Request types, in the order :func:`classify` breaks ties.
KINDS = ("deployment", "testing", "refactoring", "analysis", "planning", "code", "general")

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "deployment": (
        "deploy",
        "rollout",
        "roll out",
        "release",
        "ship",
        "rollback",
        "canary",
        "kubernetes",
        "k8s",
        "helm",
        "staging",
        "production",
        "ci/cd",
        "pipeline to prod",
    ),
    "testing": (
        "test",
        "tests",
        "pytest",
        "unit test",
        "coverage",
        "regression",
        "qa",
    ),
    "refactoring": (
        "refactor",
        "clean up",
        "cleanup",
        "restructure",
        "simplify",
        "rename",
        "extract",
        "dead code",
        "tech debt",
        "modernize",
        "modernise",
    ),
    "analysis": (
        "analy",
        "review",
        "audit",
        "lint",
        "static",
        "inspect",
        "security",
        "bug",
        "vulnerab",
        "smell",
        "quality",
        "performance",
        "find issues",
    ),
    "planning": (
        "plan",
        "roadmap",
        "break down",
        "breakdown",
        "milestone",
        "estimate",
        "design",
        "architecture",
        "subtask",
        "strategy",
    ),
    "code": (
        "implement",
        "write a",
        "write code",
        "function",
        "class",
        "script",
        "endpoint",
        "feature",
        "build a",
        "generate code",
        "api",
        "cli",
    ),
}


def classify(request: str) -> str:
    """The request's type: the kind with the most keyword hits, ``general`` without any.

    A keyword matches at the start of a word (``test`` matches ``testing``, not
    ``latest``); ties go to the kind listed first in :data:`KINDS`.
    """
    text = request.lower()
    scores = {
        kind: sum(1 for word in words if re.search(rf"\b{re.escape(word)}", text))
        for kind, words in _KEYWORDS.items()
    }
    best = max(KINDS[:-1], key=lambda kind: (scores[kind], -KINDS.index(kind)))
    return best if scores[best] > 0 else "general"


def _literal(text: str) -> str:
    # The request is data, not a template: braces would become {{...}} references.
    return re.sub(r"\s+", " ", text.replace("{", "(").replace("}", ")")).strip()


def _string(description: str, *, default: Any = None, required: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "string", "description": description}
    if required:
        spec["required"] = True
    else:
        spec["default"] = default
    return spec


def _request_inputs() -> dict[str, Any]:
    return {
        "request": _string("What to do; the goal below applies when it is empty.", default=""),
        "context": _string("Conversation context or constraints.", default=""),
    }


def _project_inputs() -> dict[str, Any]:
    return {
        "project_dir": _string("The project directory; files are read inside it.", default="."),
        "path": _string("File or directory inside the project.", default="."),
        **_request_inputs(),
    }


def _prompt(goal: str, body: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "static",
            "content": f"Goal: {goal}\nRequest: {{{{inputs.request}}}}\n"
            f"Context: {{{{inputs.context}}}}\n\n{body}",
        }
    ]


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


_STR = {"type": "string"}
_STRS = {"type": "array", "items": {"type": "string"}}


def _analysis(goal: str) -> dict[str, Any]:
    finding = _object(file=_STR, line={"type": "integer"}, severity=_STR, message=_STR)
    return {
        "workspace_dir": "{{inputs.project_dir}}",
        "inputs": _project_inputs(),
        "defaults": {"claude_preset": "analysis"},
        "steps": [
            {
                "name": "static_analysis",
                "type": "tool",
                "tool": "static_analysis",
                "args": {"path": "{{inputs.path}}"},
            },
            {
                "name": "review",
                "type": "claude",
                "output_schema": _object(
                    summary=_STR,
                    findings={"type": "array", "items": finding},
                    recommendations=_STRS,
                ),
                "prompt": [
                    *_prompt(
                        goal,
                        "Confirm or dismiss each static-analysis finding, cite "
                        "file:line, and recommend fixes in priority order.\nFindings:",
                    ),
                    {"type": "previous_response", "step": "static_analysis", "extract": "findings"},
                ],
            },
        ],
    }


def _refactoring(goal: str) -> dict[str, Any]:
    change = _object(file=_STR, line={"type": "integer"}, change=_STR)
    return {
        "workspace_dir": "{{inputs.project_dir}}",
        "inputs": _project_inputs(),
        "steps": [
            {
                "name": "static_analysis",
                "type": "tool",
                "tool": "static_analysis",
                "args": {"path": "{{inputs.path}}"},
            },
            {
                "name": "plan",
                "type": "claude",
                "claude_options": {
                    "system_prompt": "You refactor safely: behaviour is kept and "
                    "every change cites file:line."
                },
                "output_schema": _object(
                    summary=_STR, changes={"type": "array", "items": change}, recommendations=_STRS
                ),
                "prompt": [
                    *_prompt(
                        goal,
                        "Propose incremental refactorings, most valuable first, "
                        "each as a unified diff.\nStatic-analysis findings:",
                    ),
                    {"type": "previous_response", "step": "static_analysis", "extract": "findings"},
                ],
            },
        ],
    }


def _testing(goal: str) -> dict[str, Any]:
    return {
        "workspace_dir": "{{inputs.project_dir}}",
        "inputs": {
            "project_dir": _string("The project directory.", default="."),
            "module": _string("Path of the module to test, inside the project.", required=True),
            **_request_inputs(),
        },
        "steps": [
            {
                "name": "source",
                "type": "tool",
                "tool": "read_file",
                "args": {"path": "{{inputs.module}}"},
            },
            {
                "name": "write_tests",
                "type": "claude_extract",
                "extraction_config": {
                    "format": "markdown",
                    "post_processing": ["extract_code_blocks"],
                },
                "prompt": [
                    *_prompt(
                        goal,
                        "Write focused pytest tests for {{inputs.module}}: one "
                        "behaviour per test, no network, no sleeps. Answer with one "
                        "```python block.\nThe module's source:",
                    ),
                    {"type": "previous_response", "step": "source", "extract": "content"},
                ],
            },
        ],
    }


def _planning(goal: str) -> dict[str, Any]:
    subtask = _object(id=_STR, description=_STR, depends_on=_STRS)
    return {
        "inputs": _request_inputs(),
        "steps": [
            {
                "name": "plan",
                "type": "claude_smart",
                "preset": "analysis",
                "output_schema": _object(
                    summary=_STR, subtasks={"type": "array", "items": subtask}, risks=_STRS
                ),
                "prompt": _prompt(
                    goal,
                    "Break the work into ordered subtasks; a subtask that "
                    "needs others lists their ids in depends_on.",
                ),
            },
        ],
    }


def _code(goal: str) -> dict[str, Any]:
    return {
        "inputs": _request_inputs(),
        "steps": [
            {
                "name": "draft",
                "type": "claude_smart",
                "preset": "development",
                "output_schema": _object(summary=_STR, code=_STR, notes=_STRS),
                "prompt": _prompt(
                    goal,
                    "Write the code: complete, typed, with docstrings, and a "
                    "short summary of the design.",
                ),
            },
            {
                "name": "review",
                "type": "claude",
                "output_schema": _object(summary=_STR, issues=_STRS, recommendations=_STRS),
                "prompt": [
                    *_prompt(goal, "Review this draft for bugs, edge cases and missing tests:"),
                    {"type": "previous_response", "step": "draft", "extract": "code"},
                ],
            },
        ],
    }


def _deployment(goal: str) -> dict[str, Any]:
    stage = _object(name=_STR, actions=_STRS, checks=_STRS, rollback=_STR)
    return {
        "inputs": {**_request_inputs(), "service": _string("The service to roll out.", default="")},
        "steps": [
            {
                "name": "rollout_plan",
                "type": "claude_smart",
                "preset": "analysis",
                "output_schema": _object(
                    summary=_STR,
                    stages={"type": "array", "items": stage},
                    checklist=_STRS,
                    risks=_STRS,
                ),
                "prompt": _prompt(
                    goal,
                    "Service: {{inputs.service}}\nPlan a staged rollout with "
                    "checks and a rollback per stage, and a pre-flight checklist. "
                    "Plan only: nothing is deployed.",
                ),
            },
        ],
    }


def _general(goal: str) -> dict[str, Any]:
    return {
        "inputs": _request_inputs(),
        "steps": [
            {
                "name": "answer",
                "type": "claude_smart",
                "preset": "chat",
                "prompt": _prompt(goal, "Answer helpfully and concisely."),
            },
        ],
    }


_TEMPLATES: dict[str, Callable[[str], dict[str, Any]]] = {
    "analysis": _analysis,
    "refactoring": _refactoring,
    "testing": _testing,
    "planning": _planning,
    "code": _code,
    "deployment": _deployment,
    "general": _general,
}


def template(kind: str, request: str, name: str) -> dict[str, Any]:
    """The ``{"workflow": ...}`` document of type ``kind`` for ``request``, named ``name``.

    Raises ``KeyError`` for a kind not in :data:`KINDS`.
    """
    goal = _literal(request) or "(none given)"
    body = _TEMPLATES[kind](goal)
    return {
        "workflow": {
            "name": name,
            "description": f"{kind.capitalize()} pipeline generated offline for: {goal}"[:500],
            "version": 1,
            **body,
        }
    }

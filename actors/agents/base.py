"""What every agent shares: running library pipelines and shaping the response.

An agent is a plain class with a ``name``, declared ``capabilities`` (request
type -> match in 0..1, used by the router) and ``async handle(request)``. It runs
pipelines through ``runs`` (the executor pool in the tree, a local executor in
the embedded mode) and answers with one :class:`AgentResponse`.

Errors: :class:`AgentInputError` is the user's fault (a path outside the
workspace, a module that does not exist) and becomes an ``error`` answer that
names what was wrong; anything else an agent raises is a crash, and the caller
sends the request to the fallback agent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from actors.agents.models import AgentRequest, AgentResponse, Finding
from pipelines.errors import ConfigError

__all__ = [
    "AgentBase",
    "AgentInputError",
    "PipelineOutcome",
    "Runs",
    "findings_from",
    "mentioned_paths",
]


class AgentInputError(ConfigError, ValueError):
    """A request an agent cannot serve as asked (names what was wrong)."""


class Runs(Protocol):
    async def run(
        self,
        pipeline: Any,
        inputs: dict[str, Any],
        *,
        run_id: str,
        stream_key: str | None = None,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PipelineOutcome:
    """A finished run as an agent reads it."""

    pipeline: str
    run_id: str
    results: dict[str, Any]
    cost_usd: float
    duration_ms: float
    providers: tuple[str, ...] = field(default=())

    @property
    def offline(self) -> bool:
        """True when no LLM answered (every LLM step came from the offline provider)."""
        return bool(self.providers) and all(p == "offline" for p in self.providers)

    def data(self, step: str) -> dict[str, Any]:
        """The structured output of an LLM step (``{}`` when it has none)."""
        result = self.results.get(step)
        if isinstance(result, Mapping) and isinstance(result.get("data"), Mapping):
            return dict(result["data"])
        return {}

    def text(self, step: str) -> str:
        result = self.results.get(step)
        if isinstance(result, Mapping):
            return str(result.get("text", ""))
        return ""


class AgentBase:
    """Shared plumbing; subclasses set ``name``, ``capabilities`` and ``handle``."""

    name: ClassVar[str] = "agent"
    capabilities: ClassVar[Mapping[str, float]] = {}

    def __init__(self, runs: Runs) -> None:
        self._runs = runs

    async def handle(self, request: AgentRequest) -> AgentResponse:
        raise NotImplementedError

    async def run_pipeline(
        self, pipeline: str, inputs: dict[str, Any], request: AgentRequest, *, tag: str = ""
    ) -> PipelineOutcome:
        """Run a library pipeline under a run id derived from the response id, so a
        re-sent request resumes (or returns) the same run instead of paying again."""
        run_id = f"{request.response_id}-{self.name}{'-' + tag if tag else ''}"
        result = await self._runs.run(
            pipeline, inputs, run_id=run_id, stream_key=request.stream_key
        )
        results = dict(result.get("results", {}))
        providers = tuple(
            str(r["provider"])
            for r in results.values()
            if isinstance(r, Mapping) and r.get("provider")
        )
        return PipelineOutcome(
            pipeline=pipeline,
            run_id=str(result.get("run_id", run_id)),
            results=results,
            cost_usd=float(result.get("cost_usd") or 0.0),
            duration_ms=float(result.get("duration_ms") or 0.0),
            providers=providers,
        )

    def respond(self, request: AgentRequest, started: float, **fields: Any) -> AgentResponse:
        """The response with this agent's name, the request's id and the latency."""
        fields.setdefault("type", request.type)
        return AgentResponse(
            agent=self.name,
            response_id=request.response_id,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            **fields,
        )

    @staticmethod
    def context_text(request: AgentRequest) -> str:
        """Preferences and recent history, as text for a pipeline's ``context`` input."""
        parts = []
        if hint := request.preferences.get("hint"):
            parts.append(f"User preferences: {hint}")
        if request.history:
            parts.append(f"Conversation so far:\n{request.history}")
        return "\n".join(parts)


_SEVERITIES = {"error", "warning", "info"}


def findings_from(items: Any, *, limit: int = 200) -> list[Finding]:
    """Findings from tool or model output; malformed entries are skipped, not fatal."""
    found: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        message = item.get("message") or item.get("description") or item.get("finding")
        if not isinstance(message, str) or not message.strip():
            continue
        line = item.get("line")
        severity = str(item.get("severity", "info")).lower()
        finding = Finding(
            message=message.strip(),
            file=str(item["file"]) if item.get("file") else None,
            line=line
            if isinstance(line, int) and not isinstance(line, bool) and line > 0
            else None,
            severity=severity if severity in _SEVERITIES else "info",  # type: ignore[arg-type]
            rule=str(item["rule"]) if item.get("rule") else None,
        )
        key = (finding.file, finding.line, finding.rule, finding.message)
        if key not in seen:
            seen.add(key)
            found.append(finding)
        if len(found) >= limit:
            break
    return found


_PATH_TOKEN = re.compile(r"[\w./\\-]*[\w-]\.[A-Za-z0-9]{1,8}\b|[\w.-]+(?:/[\w.-]+)+/?")
#: Longer words are not paths; checking them would only cost time (and the regex
#: above is quadratic in the length of a word).
_MAX_PATH_CHARS = 255


def mentioned_paths(text: str, workspace: str) -> list[str]:
    """Paths named in ``text`` that exist inside ``workspace``, relative to it.

    A path that exists but lies outside the workspace raises :class:`AgentInputError`
    (the agent must not read it); words that are not paths are ignored.
    """
    root = Path(workspace).resolve()
    found: list[str] = []
    words = (w for w in text.split() if len(w) <= _MAX_PATH_CHARS)
    for raw in (m for word in words for m in _PATH_TOKEN.findall(word)):
        token = raw.strip("`'\".,;:()").rstrip("/")
        if not token or token in found:
            continue
        candidate = (root / token).resolve() if not Path(token).is_absolute() else Path(token)
        if not candidate.exists():
            continue
        if not candidate.resolve().is_relative_to(root):
            raise AgentInputError(f"{token!r} is outside the workspace {root}")
        relative = candidate.resolve().relative_to(root).as_posix() or "."
        if relative not in found:
            found.append(relative)
    return found

"""The platform's live numbers, from telemetry events: what the dashboard and
``GET /api/metrics`` show. Plain Python: the telemetry actor holds one
:class:`MetricsBook` in the tree, the embedded platform holds its own.

Events it reads (others are ignored):

- ``{"kind": "agent", "agent", "type", "outcome": "ok"|"fallback"|"error",
  "latency_ms", "cost_usd", "pipeline"}`` — one per chat turn;
- ``{"kind": "run", "pipeline", "outcome": "ok"|"failed", "latency_ms", "cost_usd",
  "providers": {name: {"calls", "tokens_in", "tokens_out", "cost_usd"}}}`` — one per
  pipeline run;
- ``{"kind": "error", "where", "code", "message"}`` — anything worth showing.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MetricsBook", "provider_usage", "run_event"]

_WINDOW_S = 3600.0
_MINUTES = 30


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


class MetricsBook:
    """A rolling hour of turns and runs, plus recent errors (bounded memory)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, max_events: int = 50_000) -> None:
        self._clock = clock
        self._turns: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._runs: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._errors: deque[dict[str, Any]] = deque(maxlen=50)
        self.totals: dict[str, int] = defaultdict(int)

    def record(self, event: Mapping[str, Any]) -> None:
        kind = event.get("kind")
        entry = {**event, "at": float(event.get("at") or self._clock())}
        if kind == "agent":
            self._turns.append(entry)
            self.totals["turns"] += 1
            if entry.get("outcome") != "ok":
                self._error(entry, "agent", f"{entry.get('agent')} → {entry.get('outcome')}")
        elif kind == "run":
            self._runs.append(entry)
            self.totals["runs"] += 1
            if entry.get("outcome") != "ok":
                self._error(entry, "run", str(entry.get("error") or "failed"))
        elif kind == "error":
            self._errors.append(
                {
                    "at": entry["at"],
                    "where": str(entry.get("where", "")),
                    "code": str(entry.get("code", "error")),
                    "message": str(entry.get("message", ""))[:300],
                }
            )

    def _error(self, entry: dict[str, Any], where: str, message: str) -> None:
        self._errors.append(
            {
                "at": entry["at"],
                "where": f"{where}:{entry.get('agent') or entry.get('pipeline') or ''}",
                "code": str(entry.get("code") or entry.get("outcome")),
                "message": message[:300],
            }
        )

    def snapshot(self, *, window_s: float = _WINDOW_S) -> dict[str, Any]:
        """The numbers of the last ``window_s`` seconds (runs per minute: 30 minutes)."""
        now = self._clock()
        turns = [t for t in self._turns if now - t["at"] <= window_s]
        runs = [r for r in self._runs if now - r["at"] <= window_s]
        latencies = [float(t.get("latency_ms") or 0.0) for t in turns]
        ok = sum(t.get("outcome") == "ok" for t in turns)
        minute_turns = sum(now - t["at"] <= 60 for t in turns)
        return {
            "window_s": window_s,
            "totals": dict(self.totals),
            "turns": {
                "count": len(turns),
                "per_minute": minute_turns,
                "success_rate": round(ok / len(turns), 4) if turns else None,
                "latency_ms": {
                    "p50": _pct(latencies, 0.5),
                    "p95": _pct(latencies, 0.95),
                    "p99": _pct(latencies, 0.99),
                },
                "cost_usd": round(sum(float(t.get("cost_usd") or 0.0) for t in turns), 6),
            },
            "by_agent": _group(turns, "agent"),
            "by_pipeline": _group(runs, "pipeline"),
            "by_provider": _providers(runs),
            "runs_per_minute": _per_minute(runs, now),
            "recent_errors": list(reversed(self._errors))[:20],
        }


def _group(entries: list[dict[str, Any]], key: str) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        groups[str(entry.get(key) or "unknown")].append(entry)
    return {
        name: {
            "count": len(items),
            "success_rate": round(sum(i.get("outcome") == "ok" for i in items) / len(items), 4),
            "p50_ms": _pct([float(i.get("latency_ms") or 0.0) for i in items], 0.5),
            "p95_ms": _pct([float(i.get("latency_ms") or 0.0) for i in items], 0.95),
            "cost_usd": round(sum(float(i.get("cost_usd") or 0.0) for i in items), 6),
        }
        for name, items in sorted(groups.items())
    }


def _providers(runs: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, dict[str, float]] = defaultdict(
        lambda: {"calls": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
    )
    for run in runs:
        for name, usage in (run.get("providers") or {}).items():
            for field in ("calls", "tokens_in", "tokens_out", "cost_usd"):
                totals[name][field] += usage.get(field) or 0
    return {name: {**v, "cost_usd": round(v["cost_usd"], 6)} for name, v in sorted(totals.items())}


def _per_minute(runs: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    start = int(now // 60) * 60 - (_MINUTES - 1) * 60
    buckets = [{"minute": start + 60 * i, "count": 0, "failed": 0} for i in range(_MINUTES)]
    for run in runs:
        index = int((run["at"] - start) // 60)
        if 0 <= index < _MINUTES:
            buckets[index]["count"] += 1
            buckets[index]["failed"] += run.get("outcome") != "ok"
    return buckets


def provider_usage(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Calls, tokens and cost per provider from a run's step results."""
    usage: dict[str, dict[str, float]] = defaultdict(
        lambda: {"calls": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
    )
    for result in results.values():
        if not isinstance(result, Mapping) or not result.get("provider"):
            continue
        row = usage[str(result["provider"])]
        tokens = result.get("usage") or {}
        row["calls"] += 1
        row["tokens_in"] += int(tokens.get("input_tokens") or 0)
        row["tokens_out"] += int(tokens.get("output_tokens") or 0)
        row["cost_usd"] += float(result.get("cost") or result.get("cost_usd") or 0.0)
    return dict(usage)


def run_event(
    pipeline: Any,
    started: float,
    *,
    result: dict[str, Any] | None = None,
    error: BaseException | None = None,
) -> dict[str, Any]:
    """The telemetry event of a finished (or failed) run."""
    name = pipeline if isinstance(pipeline, str) else str(pipeline.get("source", "submitted"))
    event: dict[str, Any] = {
        "kind": "run",
        "pipeline": Path(name).stem,
        "outcome": "ok" if error is None else "failed",
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if result is not None:
        event["cost_usd"] = result.get("cost_usd") or 0.0
        event["providers"] = provider_usage(result.get("results") or {})
    if error is not None:
        cause = getattr(error, "cause", None) or error
        event["code"] = getattr(cause, "code", type(cause).__name__)
        event["error"] = str(cause)[:300]
    return event

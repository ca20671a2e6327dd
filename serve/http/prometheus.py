"""``GET /metrics``: the platform's numbers in the Prometheus text format (0.0.4).

Ray exports its own metrics (``ray_elexirion_*``) on each node's metrics port; this
endpoint serves the same view the dashboard shows, from one place, for scrapers
that only see the HTTP edge.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, value: Any, labels: dict[str, str] | None = None) -> str | None:
    if value is None:
        return None
    tags = ",".join(f'{k}="{_escape(v)}"' for k, v in (labels or {}).items())
    return f"{name}{{{tags}}} {float(value):g}" if tags else f"{name} {float(value):g}"


def render(metrics: dict[str, Any]) -> str:
    """The text exposition of :meth:`Platform.metrics`'s snapshot."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, rows: list[str | None]) -> None:
        out.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        out.extend(r for r in rows if r is not None)

    turns = metrics.get("turns", {})
    totals = metrics.get("totals", {})
    family(
        "elexirion_turns_total",
        "counter",
        "Chat turns answered since start.",
        [_line("elexirion_turns_total", totals.get("turns", 0))],
    )
    family(
        "elexirion_runs_total",
        "counter",
        "Pipeline runs finished since start.",
        [_line("elexirion_runs_total", totals.get("runs", 0))],
    )
    family(
        "elexirion_turn_success_ratio",
        "gauge",
        "Share of turns answered by the agent chosen (last hour).",
        [_line("elexirion_turn_success_ratio", turns.get("success_rate"))],
    )
    latency = turns.get("latency_ms", {})
    family(
        "elexirion_turn_latency_ms",
        "gauge",
        "Turn latency percentiles over the last hour (ms).",
        [_line("elexirion_turn_latency_ms", latency.get(q), {"quantile": q}) for q in latency],
    )
    agents = metrics.get("by_agent", {})
    family(
        "elexirion_agent_turns",
        "gauge",
        "Turns per agent over the last hour.",
        [_line("elexirion_agent_turns", v["count"], {"agent": k}) for k, v in agents.items()],
    )
    providers = metrics.get("by_provider", {})
    rows: list[str | None] = []
    for name, usage in providers.items():
        rows.append(
            _line(
                "elexirion_provider_tokens",
                usage["tokens_in"],
                {"provider": name, "direction": "in"},
            )
        )
        rows.append(
            _line(
                "elexirion_provider_tokens",
                usage["tokens_out"],
                {"provider": name, "direction": "out"},
            )
        )
    family("elexirion_provider_tokens", "gauge", "Tokens per provider over the last hour.", rows)
    family(
        "elexirion_provider_cost_usd",
        "gauge",
        "LLM cost per provider over the last hour (USD).",
        [
            _line("elexirion_provider_cost_usd", v["cost_usd"], {"provider": k})
            for k, v in providers.items()
        ],
    )
    states = {"closed": 0, "half_open": 1, "open": 2}
    family(
        "elexirion_breaker_state",
        "gauge",
        "Circuit breaker per provider/model: 0 closed, 1 half-open, 2 open.",
        [
            _line("elexirion_breaker_state", states.get(str(v), 0), {"breaker": k})
            for k, v in metrics.get("breakers", {}).items()
        ],
    )
    family(
        "elexirion_actor_restarts",
        "gauge",
        "Restarts per actor of the supervision tree.",
        [
            _line(
                "elexirion_actor_restarts", row.get("restarts") or 0, {"path": str(row.get("path"))}
            )
            for row in metrics.get("tree", [])
        ],
    )
    return "\n".join(out) + "\n"

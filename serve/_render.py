"""Human-readable output of runs for the terminal (rich)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines.runner import RunResult

__all__ = ["console_error", "print_run"]

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def console_error(message: str, *, kind: str) -> None:
    """One clear error on stderr: what kind of failure, then the message."""
    _err.print(f"[bold red]error[/] ({escape(kind)}): {escape(message)}", soft_wrap=True)


def print_run(result: RunResult) -> None:
    """Each step's outcome, findings as file:line, LLM text, then totals."""
    _out.print(
        f"[bold]{escape(result.pipeline)}[/]  run {result.run_id[:8]}"
        + (f"  (resumed at step {result.resumed_at + 1})" if result.resumed_at else "")
    )
    for name, step_result in result.results.items():
        _print_step(name, step_result)
    usage = result.usage
    _out.print(
        f"\n[dim]{result.steps_run} steps in {result.duration_ms:.0f} ms · "
        f"{usage.get('total_tokens', 0)} tokens · ${result.cost_usd:.4f}[/]"
    )


def _print_step(name: str, result: Any) -> None:
    if not isinstance(result, Mapping):
        _out.print(f"\n[bold cyan]{escape(name)}[/]: {escape(repr(result))}")
        return
    status = (
        "skipped" if result.get("skipped") else ("ok" if result.get("success", True) else "FAILED")
    )
    provider = f" · {escape(str(result['provider']))}" if "provider" in result else ""
    colour = "green" if status == "ok" else "yellow"
    _out.print(f"\n[bold cyan]{escape(name)}[/] [{colour}]{status}[/]{provider}")
    if result.get("note"):
        _out.print(f"  [dim]{escape(str(result['note']))}[/]")
    findings = result.get("findings")
    if isinstance(findings, list) and findings and isinstance(findings[0], Mapping):
        _print_findings(findings)
    if isinstance(result.get("summary"), str):
        _out.print(f"  [bold]Summary:[/] {escape(result['summary'])}")
    recs = result.get("recommendations")
    if isinstance(recs, list) and recs:
        _out.print("  [bold]Recommendations:[/]")
        for rec in recs:
            _out.print(f"   • {escape(str(rec))}")
    if isinstance(result.get("text"), str) and "summary" not in result:
        text = result["text"].strip()
        lines = text.splitlines()
        _out.print(escape("  " + "\n  ".join(lines[:40]) + ("\n  …" if len(lines) > 40 else "")))
    if result.get("error"):
        _out.print(f"  [red]{escape(str(result['error']))}[/]")


def print_providers(rows: list[dict[str, Any]]) -> None:
    """The providers table of ``elexirion providers``."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("provider", "key", "endpoint", "default model", "breaker", "fallback chain"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["provider"],
            "set" if row["key_set"] else "[dim]not set[/]",
            escape(row["base_url"]),
            escape(row["default_model"]),
            row["breaker"],
            " → ".join(row["chain"]),
        )
    _out.print(table)


def print_status(rows: list[dict[str, Any]]) -> None:
    """The tree table of ``elexirion status``."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("path", "class", "node", "pid", "state", "restarts", "uptime"):
        table.add_column(column)
    for row in rows:
        uptime = row.get("uptime")
        table.add_row(
            escape(str(row["path"])),
            escape(str(row["class"])),
            str(row["node"] or "")[:12],
            str(row["pid"] or ""),
            escape(str(row["state"])),
            str(row["restarts"]),
            f"{uptime:.0f} s" if isinstance(uptime, int | float) else "",
        )
    _out.print(table)


def _print_findings(findings: list[Mapping[str, Any]]) -> None:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("location", "rule", "severity", "message"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(
            f"{f.get('file', '?')}:{f.get('line', '?')}",
            str(f.get("rule", "")),
            str(f.get("severity", "")),
            str(f.get("message", "")),
        )
    _out.print(table)

"""How ``elexirion chat`` shows things in the terminal (rich, readable without colour).

Everything here takes plain JSON-able dicts (what a
:class:`~actors.agents.backend.ChatBackend` returns) and a :class:`~rich.console.Console`;
nothing talks to a backend. :class:`TurnProgress` is the ``on_event`` callback of a
turn: a live status line on a terminal, one line per event elsewhere, and ``token``
events written through as they arrive.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.status import Status
from rich.syntax import Syntax
from rich.table import Table
from rich.tree import Tree

__all__ = [
    "TurnProgress",
    "print_history",
    "print_preferences",
    "print_response",
    "print_sessions",
]

#: Findings shown before "… N more"; ``--json`` always has them all.
MAX_FINDINGS = 40
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "blue"}
_STEP_MARK = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}


def print_response(
    console: Console,
    response: Mapping[str, Any],
    *,
    workspace: str | None = None,
    streamed: str = "",
) -> None:
    """A response: header, summary, suggestion, findings, recommendations, details, next actions.

    ``workspace`` shortens absolute finding paths under it; ``streamed`` is text already
    written by :class:`TurnProgress`, so an identical summary is not printed twice.
    """
    console.print(_header(response), soft_wrap=True)
    if response.get("fallback_from"):
        reason = response.get("fallback_reason")
        console.print(
            f"[yellow]↳ answered by {escape(str(response.get('agent')))} instead of "
            f"{escape(str(response['fallback_from']))}[/]"
            + (f": {escape(reason)}" if reason else "")
        )
    summary = str(response.get("summary") or "").strip()
    if summary and summary != streamed.strip():
        console.print(escape(summary))
    if response.get("suggestion"):
        console.print(f"[bold magenta]Suggestion:[/] {escape(str(response['suggestion']))}")
    findings = [f for f in response.get("findings") or [] if isinstance(f, Mapping)]
    if findings:
        _print_findings(console, findings, workspace)
    recommendations = response.get("recommendations") or []
    if recommendations:
        console.print("\n[bold]Recommendations[/]")
        for number, text in enumerate(recommendations, 1):
            console.print(f"  {number}. {escape(str(text))}")
    _print_details(console, response)
    next_actions = response.get("next_actions") or []
    if next_actions:
        console.print("\n[bold]Next[/] [dim](type /n N to send one)[/]")
        for number, text in enumerate(next_actions, 1):
            console.print(f"  [cyan]/n {number}[/]  {escape(str(text))}")


def _header(response: Mapping[str, Any]) -> str:
    agent = str(response.get("agent") or "?")
    parts = [f"[bold cyan]{escape(agent)} agent[/]"]
    kind = response.get("type")
    if kind and kind != agent:
        parts.append(escape(str(kind)))
    if isinstance(response.get("confidence"), int | float):
        parts.append(f"confidence {response['confidence']:.2f}")
    if response.get("pipeline_used"):
        parts.append(f"pipeline {escape(str(response['pipeline_used']))}")
    cost = response.get("cost_usd")
    if isinstance(cost, int | float):
        parts.append(f"${cost:.4f}")
    latency = response.get("latency_ms")
    if isinstance(latency, int | float):
        parts.append(f"{latency:.0f} ms" if latency < 1000 else f"{latency / 1000:.1f} s")
    return " · ".join(parts)


def _location(finding: Mapping[str, Any], workspace: str | None) -> str:
    file = finding.get("file")
    if not file:
        return "-"
    path = str(file)
    if workspace and Path(path).is_absolute():
        with contextlib.suppress(ValueError):  # outside the workspace: keep it absolute
            path = str(Path(path).relative_to(workspace))
    return f"{path}:{finding['line']}" if finding.get("line") else path


def _print_findings(
    console: Console, findings: Sequence[Mapping[str, Any]], workspace: str | None
) -> None:
    ordered = sorted(findings, key=lambda f: (str(f.get("file") or ""), int(f.get("line") or 0)))
    console.print(f"\n[bold]Findings ({len(ordered)})[/]")
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("location", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("message", overflow="fold")
    for finding in ordered[:MAX_FINDINGS]:
        severity = str(finding.get("severity") or "info")
        table.add_row(
            f"[bold]{escape(_location(finding, workspace))}[/]",
            f"[{_SEVERITY_STYLE.get(severity, 'default')}]{escape(severity)}[/]",
            escape(str(finding.get("rule") or "")),
            escape(str(finding.get("message") or "")),
        )
    console.print(Padding(table, (0, 0, 0, 2), expand=False))
    if len(ordered) > MAX_FINDINGS:
        console.print(f"  [dim]… {len(ordered) - MAX_FINDINGS} more (--json shows all)[/]")


def _print_details(console: Console, response: Mapping[str, Any]) -> None:
    """Diffs, a plan, workflow steps, rollout stages, generated tests and their run."""
    details = response.get("details")
    details = details if isinstance(details, Mapping) else {}
    for title, note, diff in _diffs(details):
        console.print(f"\n[bold]{escape(title)}[/]")
        if note:
            console.print(f"[dim]{escape(note)}[/]")
        console.print(_syntax(diff, "diff"))
    for note in details.get("notes") or []:
        console.print(f"[dim]note: {escape(str(note))}[/]")
    plan = response.get("plan") or details.get("plan")
    if isinstance(plan, Mapping) and plan.get("subtasks"):
        console.print()
        console.print(_plan_tree(plan))
    steps = response.get("steps") or details.get("steps")
    if isinstance(steps, list) and steps and isinstance(steps[0], Mapping):
        _print_steps(console, steps)
    stages = details.get("stages")
    if isinstance(stages, list) and stages and isinstance(stages[0], Mapping):
        console.print()
        console.print(_stages_tree(stages, details.get("risks") or []))
    code = details.get("code")
    if isinstance(code, str) and code.strip():
        title = details.get("test_file") or (
            f"tests for {details['module']}" if details.get("module") else "code"
        )
        console.print(f"\n[bold]{escape(str(title))}[/]")
        console.print(_syntax(code, "python"))
    run = details.get("run")
    if isinstance(run, Mapping) and run.get("verdict"):
        console.print(f"\n[bold]Test run[/]: {escape(str(run['verdict']))}")
        tail = str(run.get("output_tail") or "").strip()
        if tail and run.get("exit_code"):
            console.print(escape(tail))


def _diffs(details: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(title, description, unified diff)`` from a ``diff`` string or a ``diffs`` list."""
    found: list[tuple[str, str, str]] = []
    if isinstance(details.get("diff"), str) and details["diff"].strip():
        found.append(("Diff", "", details["diff"]))
    for item in details.get("diffs") or []:
        if isinstance(item, str) and item.strip():
            found.append(("Diff", "", item))
        elif isinstance(item, Mapping) and isinstance(item.get("diff"), str):
            title = f"Diff of {item.get('file') or '?'}"
            found.append((title, str(item.get("description") or ""), item["diff"]))
    return found


def _stages_tree(stages: Sequence[Mapping[str, Any]], risks: Sequence[Any]) -> Tree:
    tree = Tree("[bold]Rollout[/]")
    for number, stage in enumerate(stages, 1):
        node = tree.add(f"{number}. {escape(str(stage.get('name') or ''))}")
        for action in stage.get("actions") or []:
            node.add(escape(str(action)))
        checks = stage.get("checks") or []
        if checks:
            node.add(f"[dim]checks: {escape('; '.join(map(str, checks)))}[/]")
        if stage.get("rollback"):
            node.add(f"[dim]rollback: {escape(str(stage['rollback']))}[/]")
    if risks:
        node = tree.add("[yellow]risks[/]")
        for risk in risks:
            node.add(escape(str(risk)))
    return tree


def _syntax(code: str, lexer: str) -> Syntax:
    return Syntax(
        code.rstrip("\n"), lexer, theme="ansi_dark", background_color="default", word_wrap=True
    )


def _plan_tree(plan: Mapping[str, Any]) -> Tree:
    tree = Tree(f"[bold]Plan[/]: {escape(str(plan.get('summary') or ''))}".rstrip(": "))
    for task in plan.get("subtasks") or []:
        if not isinstance(task, Mapping):
            continue
        after = task.get("depends_on") or []
        tree.add(
            f"{escape(str(task.get('id')))} · [cyan]{escape(str(task.get('agent')))}[/] — "
            f"{escape(str(task.get('description') or ''))}"
            + (f" [dim](after {escape(', '.join(map(str, after)))})[/]" if after else "")
        )
    return tree


def _print_steps(console: Console, steps: Sequence[Mapping[str, Any]]) -> None:
    console.print("\n[bold]Workflow steps[/]")
    for step in steps:
        status = str(step.get("status") or "?")
        line = (
            f"  {_STEP_MARK.get(status, '?')} {escape(str(step.get('id')))} "
            f"[cyan]{escape(str(step.get('agent')))}[/] — "
            f"{escape(str(step.get('description') or ''))} ({escape(status)})"
        )
        console.print(line)
        inner = step.get("response")
        if isinstance(inner, Mapping) and inner.get("summary"):
            console.print(f"      [dim]{escape(_shorten(str(inner['summary']), 160))}[/]")
        if step.get("error"):
            console.print(f"      [red]{escape(_shorten(str(step['error']), 160))}[/]")


def print_sessions(
    console: Console, sessions: Sequence[Mapping[str, Any]], *, current: str | None
) -> None:
    """The ``/sessions`` table: id, updated, turns, active agent, title (``*`` = current)."""
    if not sessions:
        console.print("[dim]no sessions yet[/]")
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("", "id", "updated", "turns", "agent", "title"):
        table.add_column(column, no_wrap=column != "title", overflow="ellipsis")
    for row in sessions:
        sid = str(row.get("id") or "")
        table.add_row(
            "*" if sid == current else "",
            sid[:12],
            _when(row.get("updated_at")),
            str(row.get("turn_count") or 0),
            escape(str(row.get("active_agent") or "-")),
            escape(_shorten(str(row.get("title") or ""), 60)),
        )
    console.print(table)
    console.print("[dim]/switch ID continues a session (a unique prefix of the id is enough)[/]")


def print_history(console: Console, turns: Sequence[Mapping[str, Any]]) -> None:
    """The ``/history`` list: one shortened line per turn."""
    if not turns:
        console.print("[dim]no turns in this session yet[/]")
        return
    for turn in turns:
        meta = turn.get("meta")
        meta = meta if isinstance(meta, Mapping) else {}
        role = str(turn.get("role") or "?")
        who = "you" if role == "user" else str(meta.get("agent") or role)
        text = _shorten(" ".join(str(turn.get("content") or "").split()), 200)
        console.print(f"[bold]{escape(who)}[/]: {escape(text)}")


def print_preferences(console: Console, preferences: Mapping[str, Any]) -> None:
    """Learned preferences, one line: ``verbosity detailed · focus areas security``."""
    parts = []
    for key, value in preferences.items():
        if key == "hint" or value in (None, "", [], {}):
            continue  # the prompt hint is for the model, not the user
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{key.replace('_', ' ')} {shown}")
    if not parts:
        console.print("[dim]no preferences learned yet[/]")
        return
    console.print(f"[dim]learned preferences: {escape(' · '.join(parts))}[/]")


def _when(value: Any) -> str:
    """A timestamp (epoch seconds, ISO text or datetime) as ``YYYY-MM-DD HH:MM``."""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value).astimezone()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value or "")[:16].replace("T", " ")


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class TurnProgress:
    """The ``on_event`` callback of one turn; use as a context manager around the turn.

    On a terminal a transient status line follows the events ("routing…", "→ analysis
    agent (0.93)", "running code_analysis: step review"); elsewhere, with ``lines``,
    each event is one dim line. ``token`` events (when ``tokens``) end the status line
    and are written as they come; :attr:`streamed` keeps their text. Thread-safe: a
    backend may report from another thread.
    """

    def __init__(self, console: Console, *, lines: bool = True, tokens: bool = True) -> None:
        self._console = console
        self._lines = lines and not console.is_terminal
        self._tokens = tokens
        self._lock = threading.Lock()
        self._status: Status | None = None
        self._pipeline: str | None = None
        self.streamed = ""

    def __enter__(self) -> TurnProgress:
        if self._console.is_terminal:
            self._status = self._console.status("routing…", spinner="dots")
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._stop_status()
            if self.streamed and not self.streamed.endswith("\n"):
                self._write("\n")

    def __call__(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            if event.get("event") == "token":
                if self._tokens and isinstance(event.get("text"), str):
                    self._stop_status()
                    self.streamed += event["text"]
                    self._write(event["text"])
                return
            text = self.describe(event)
            if not text or self.streamed:
                return  # after tokens began, a status line would tear the text apart
            if self._status is not None:
                self._status.update(escape(text))
            elif self._lines:
                self._console.print(f"[dim]{escape(text)}[/]")

    def describe(self, event: Mapping[str, Any]) -> str:
        """One line for a progress event (empty when there is nothing to say)."""
        kind = str(event.get("event") or "")
        if event.get("pipeline"):
            self._pipeline = str(event["pipeline"])
        if kind == "routing":
            return "routing…"
        if kind == "routed":
            confidence = event.get("confidence")
            score = f" ({confidence:.2f})" if isinstance(confidence, int | float) else ""
            return f"→ {event.get('agent')} agent{score}"
        if kind == "step":
            where = f"running {self._pipeline}: " if self._pipeline else "running "
            return f"{where}step {event.get('step')}"
        if kind in ("pipeline", "pipeline_started") and self._pipeline:
            return f"running {self._pipeline}"
        message = event.get("message") or event.get("text")
        return str(message) if message else ""  # "done" and the like: nothing to show

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _write(self, text: str) -> None:
        self._console.file.write(text)
        self._console.file.flush()

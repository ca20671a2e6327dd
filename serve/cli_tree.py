"""CLI commands for the supervised tree: ``up``, ``status``, ``down``, and ``run --cluster``.

Imports of Ray stay inside the commands, so ``elexirion run`` (in-process) never
pays for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.errors import ConfigError
from serve._render import console_error, print_run

__all__ = ["provider_env", "register", "run_on_cluster"]

# Ray reads its auth mode once, when first imported: every command here imports
# ray lazily, after this module set it (the product keeps token auth on).
os.environ.setdefault("RAY_AUTH_MODE", "token")

_PROVIDER_ENV = (
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_BASE_URL",
    "OPENAI_BASE_URL",
    "ELEXIRION_CONFIG",
)


def provider_env() -> dict[str, str]:
    """Provider settings of this shell, handed to the tree's actors (never printed)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k in _PROVIDER_ENV or (k.startswith("ELEXIRION_") and k != "ELEXIRION_STORE")
    }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_on_cluster(
    path: Path, values: dict[str, Any], *, address: str | None, as_json: bool
) -> None:
    """Run the pipeline file at ``path`` on an executor; exit codes as for ``run``."""
    from actors.app import connect, execute_on_cluster
    from pipelines.runner import RunResult

    try:
        connect(address, start_local=False)
        summary = execute_on_cluster(
            {"yaml": path.read_text(encoding="utf-8"), "source": str(path)}, values
        )
    except ConnectionError as exc:
        console_error(f"{_one_line(exc)}; start the tree with `elexirion up`", kind="no cluster")
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 - remote failures arrive wrapped; show the cause
        cause = getattr(exc, "cause", None) or exc
        config = isinstance(cause, ConfigError)
        console_error(
            _one_line(cause), kind="invalid pipeline or input" if config else "run failed"
        )
        raise typer.Exit(2 if config else 1) from None
    if as_json:
        sys.stdout.write(json.dumps(summary.get("results", {}), default=str) + "\n")
        return
    print_run(
        RunResult(
            run_id=summary.get("run_id", ""),
            pipeline=summary.get("pipeline", str(path)),
            results=summary.get("results", {}),
            cost_usd=summary.get("cost_usd", 0.0),
            usage=summary.get("usage", {}),
            duration_ms=summary.get("duration_ms", 0.0),
            resumed_at=summary.get("resumed_at"),
        )
    )
    typer.echo(f"ran on {summary.get('executor')} (node {str(summary.get('node'))[:12]})", err=True)


def up(
    address: Annotated[
        str | None,
        typer.Option(help="Join this Ray cluster (default: the running one, else start one)."),
    ] = None,
    shards: Annotated[int, typer.Option(min=1, help="Session shards.")] = 4,
    executors: Annotated[int, typer.Option(min=1, help="Pipeline executors.")] = 2,
    store: Annotated[
        str | None, typer.Option(help="Store URL: sqlite:///path or postgresql://...")
    ] = None,
) -> None:
    """Start (or join) Ray, then start the supervision tree; idempotent."""
    from actors.app import connect, start_tree
    from actors.config import TreeConfig

    started = time.perf_counter()
    url = (
        store
        or os.environ.get("ELEXIRION_STORE")
        or f"sqlite:///{Path('.elexirion/elexirion.db').resolve()}"
    )
    try:
        info = connect(address)
        start_tree(
            TreeConfig(
                store_url=url,
                shards=shards,
                executors=executors,
                provider_env=provider_env(),
                workspace=str(Path.cwd()),
            )
        )
    except Exception as exc:  # noqa: BLE001 - show what failed, in one line
        console_error(_one_line(exc), kind="cannot start the tree")
        raise typer.Exit(1) from None
    typer.echo(f"tree up in {time.perf_counter() - started:.1f} s (store: {url.split('@')[-1]})")
    typer.echo(
        f"Ray dashboard: {info.get('dashboard_url') or 'unavailable'} (token: ~/.ray/auth_token)"
    )
    typer.echo("status: elexirion status · stop: elexirion down")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of actors.")] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray address (default: the running one).")
    ] = None,
) -> None:
    """The tree: path, actor class, node, pid, state, restarts, uptime."""
    from actors.app import connect
    from actors.status import status_rows

    try:
        connect(address, start_local=False)
        rows = status_rows()
    except ConnectionError:
        console_error("no Ray cluster is running; start one with `elexirion up`", kind="no cluster")
        raise typer.Exit(1) from None
    if rows is None:
        console_error("the tree is not running; start it with `elexirion up`", kind="no tree")
        raise typer.Exit(1)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        from serve._render import print_status

        print_status(rows)


def down(
    address: Annotated[
        str | None, typer.Option(help="Ray address (default: the running one).")
    ] = None,
    ray_too: Annotated[bool, typer.Option("--ray", help="Also stop the local Ray head.")] = False,
) -> None:
    """Orderly shutdown of the tree (children in reverse order)."""
    from actors.app import connect, stop_tree

    try:
        connect(address, start_local=False)
        stopped = stop_tree()
    except ConnectionError:
        stopped = False
    typer.echo("tree stopped" if stopped else "the tree was not running")
    if ray_too:
        import ray

        ray.shutdown()
        exe = Path(sys.executable).parent / "ray"
        subprocess.run([str(exe), "stop"], check=False, capture_output=True, timeout=120)
        typer.echo("ray stopped")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(status)
    app.command()(down)

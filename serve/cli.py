"""The ``elexirion`` command line: run, validate and inspect pipelines.

Exit codes: 0 done, 2 bad pipeline or input (a ``ConfigError``), 1 a step failed
at run time. With ``--json`` stdout carries exactly one JSON object; everything
else (logs, errors) goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.errors import ConfigError, RunError
from serve._render import console_error, print_run
from serve.cli_chat import register as register_chat_command
from serve.cli_keys import register as register_key_commands
from serve.cli_pipelines import register as register_pipeline_commands
from serve.cli_serve import register as register_serve_command
from serve.cli_tree import register as register_tree_commands

__all__ = ["app", "main"]

app = typer.Typer(
    name="elexirion",
    help="Elexirion: supervised AI agents running pipeline_ex-compatible YAML pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

LIBRARY = Path(__file__).resolve().parent.parent / "pipelines" / "library"


def _pipeline_path(name: str) -> Path:
    """A file path, or the name of a pipeline in the library (``code_analysis``)."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    from pipelines.dna import find_pipeline

    return find_pipeline(name) or path


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--input expects key=value, got {pair!r}")
        raw[key.strip()] = value
    return raw


@app.command()
def run(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    file: Annotated[str, typer.Argument(help="Pipeline YAML file, or a library pipeline name.")],
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="Input as key=value (JSON values parse)."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Run every LLM step on this provider (e.g. offline).")
    ] = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Override the pipeline's workspace_dir.")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option(help="Override where output_to_file writes.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: step name -> result.")
    ] = False,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Run on an executor of the running tree.")
    ] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray address for --cluster (default: the running one).")
    ] = None,
) -> None:
    """Run a pipeline (here, or with --cluster on the tree) and print each step's result."""
    if cluster:
        _cluster_run(file, inputs or [], address=address, as_json=as_json)
        return
    from pipelines.config import load_settings
    from pipelines.loader import load_pipeline
    from pipelines.observability import configure_logging
    from pipelines.providers.setup import build_registry
    from pipelines.runner import JsonFileSessionStore, Runner
    from pipelines.runner._inputs import coerce_cli_inputs

    try:
        settings = load_settings()
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        loaded = load_pipeline(_pipeline_path(file))
        values = coerce_cli_inputs(loaded.workflow, _parse_inputs(inputs or []))
        runner = Runner(
            providers=build_registry(settings, force=provider),
            default_provider=settings.default_provider,
            sessions=JsonFileSessionStore(Path(".elexirion") / "sessions"),
            workspace_dir=workspace,
            output_dir=output_dir,
        )
        result = asyncio.run(_run_and_close(runner, loaded, values))
    except ConfigError as exc:
        console_error(str(exc), kind="invalid pipeline or input")
        raise typer.Exit(2) from None
    except RunError as exc:
        console_error(str(exc), kind="run failed")
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(result.results, default=str, ensure_ascii=False) + "\n")
    else:
        print_run(result)


async def _run_and_close(runner: Any, loaded: Any, values: dict[str, Any]) -> Any:
    try:
        return await runner.run(loaded, values)
    finally:
        await runner.aclose()


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Pipeline files to check.")]) -> None:
    """Check pipeline files; prints one line per file, exits 2 if any is invalid."""
    from pipelines.loader import load_pipeline

    bad = 0
    for file in files:
        try:
            loaded = load_pipeline(file)
        except ConfigError as exc:
            bad += 1
            console_error(str(exc), kind="invalid")
        else:
            steps = len(loaded.workflow.steps)
            typer.echo(f"ok  {file}  ({loaded.name}, {steps} step{'s' if steps != 1 else ''})")
    if bad:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of pipeline files (for editors and validators)."""
    from pipelines.spec import json_schema_text

    sys.stdout.write(json_schema_text() + "\n")


@app.command()
def providers(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of a table.")
    ] = False,
) -> None:
    """List providers: key configured (never the key), endpoint, model, breaker, fallback chain."""
    from pipelines.config import load_settings
    from pipelines.providers.setup import build_registry
    from serve._render import print_providers

    try:
        settings = load_settings()
        registry = build_registry(settings)
    except ConfigError as exc:
        console_error(str(exc), kind="invalid configuration")
        raise typer.Exit(2) from None
    rows = provider_rows(settings, registry)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        print_providers(rows)


def provider_rows(settings: Any, registry: Any) -> list[dict[str, Any]]:
    """One row per provider, with nothing secret in it."""
    from urllib.parse import urlsplit

    breakers = {b["key"]: b["state"] for b in registry.resilience.breakers.snapshot()}
    rows = []
    for name in ("anthropic", "gemini", "openai", "offline"):
        conf = settings.provider(name) if name != "offline" else None
        base = conf.base_url if conf else None
        if base:  # user:password@ in a URL is a credential too
            parts = urlsplit(base)
            base = parts._replace(
                netloc=parts.hostname + (f":{parts.port}" if parts.port else "")
            ).geturl()
        model = registry.default_model(name) or "offline-extractive-1"
        rows.append(
            {
                "provider": name,
                "key_set": name == "offline" or registry.has_key(name),
                "base_url": base or "(default)",
                "default_model": model,
                "breaker": breakers.get(f"{name}:{model}", "closed"),
                "chain": registry.chain_for(name),
            }
        )
    return rows


@app.command("fake-provider")
def fake_provider(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    protocol: Annotated[str, typer.Option(help="anthropic, gemini or openai.")] = "anthropic",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8100,
    latency_ms: Annotated[float, typer.Option(help="Delay before every answer.")] = 0.0,
    error_rate: Annotated[
        float, typer.Option(help="Probability (0-1) that a request fails.")
    ] = 0.0,
    errors: Annotated[
        str, typer.Option(help="Comma-separated fault kinds to draw from.")
    ] = "429,529,500,timeout",
    stream_delay_ms: Annotated[
        float, typer.Option("--stream-delay-ms", help="Delay between SSE chunks.")
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible faults.")] = None,
) -> None:
    """Serve a wire-level fake of a provider API on 127.0.0.1 (for benchmarks and chaos runs)."""
    import time

    from pipelines.providers.fakes import FakeProviderServer, FaultPlan

    try:
        plan = FaultPlan(
            latency_ms=latency_ms,
            error_rate=error_rate,
            errors=tuple(e.strip() for e in errors.split(",") if e.strip()),
            seed=seed,
            stream_chunk_delay_ms=stream_delay_ms,
        )
        server = FakeProviderServer(protocol, port=port, plan=plan).start()
    except (ValueError, RuntimeError) as exc:
        console_error(str(exc), kind="cannot start fake provider")
        raise typer.Exit(2) from None
    typer.echo(f"fake {protocol} API on {server.base_url} (Ctrl-C to stop)", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def _cluster_run(file: str, pairs: list[str], *, address: str | None, as_json: bool) -> None:
    from pipelines.loader import load_pipeline
    from pipelines.runner._inputs import coerce_cli_inputs
    from serve.cli_tree import run_on_cluster

    try:
        path = _pipeline_path(file)
        loaded = load_pipeline(path)  # validated here: bad input fails before any actor is asked
        values = coerce_cli_inputs(loaded.workflow, _parse_inputs(pairs))
    except ConfigError as exc:
        console_error(str(exc), kind="invalid pipeline or input")
        raise typer.Exit(2) from None
    run_on_cluster(path, values, address=address, as_json=as_json)


register_tree_commands(app)
register_pipeline_commands(app)
register_chat_command(app)
register_key_commands(app)
register_serve_command(app)


def main() -> None:
    """Console-script entry point."""
    app()

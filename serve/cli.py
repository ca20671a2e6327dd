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
from typing import Annotated

import typer

from pipelines.errors import ConfigError, RunError
from serve._render import console_error, print_run

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
    candidate = LIBRARY / f"{name}.yaml"
    return candidate if candidate.exists() else path


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
) -> None:
    """Run a pipeline in this process and print each step's result."""
    from pipelines.loader import load_pipeline
    from pipelines.providers.registry import ProviderRegistry
    from pipelines.runner import JsonFileSessionStore, Runner
    from pipelines.runner._inputs import coerce_cli_inputs

    try:
        loaded = load_pipeline(_pipeline_path(file))
        values = coerce_cli_inputs(loaded.workflow, _parse_inputs(inputs or []))
        runner = Runner(
            providers=ProviderRegistry(force=provider),
            sessions=JsonFileSessionStore(Path(".elexirion") / "sessions"),
            workspace_dir=workspace,
            output_dir=output_dir,
        )
        result = asyncio.run(runner.run(loaded, values))
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


def main() -> None:
    """Console-script entry point."""
    app()

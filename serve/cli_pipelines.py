"""CLI commands for Genesis and DNA: ``generate``, ``pipelines list``, ``pipelines lineage``.

``generate`` drafts a pipeline for a request (an LLM with structured output and up
to three repair rounds, or an offline template), saves it to the user library
and records its DNA. ``pipelines list`` and ``pipelines lineage`` first record a
version for every library file whose content changed, then show versions, DNA
and fitness measured from stored runs and training records.

Exit codes as for ``run``: 0 done, 2 a user error (bad request, unknown
pipeline, bad store URL, no valid pipeline after the repairs), 1 a runtime
failure (provider or database unreachable). ``--json`` prints one JSON value.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines.errors import ConfigError, RunError
from serve._render import console_error
from store.errors import StoreConfigError, StoreError

__all__ = ["pipelines_app", "register", "store_url"]

_T = TypeVar("_T")
_err = Console(stderr=True, highlight=False)


def _out() -> Console:
    # Piped output keeps whole rows (rich would squeeze a table into 80 columns);
    # a terminal gets its own width.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


pipelines_app = typer.Typer(
    name="pipelines",
    help="The pipeline library: versions, DNA (lineage) and fitness.",
    no_args_is_help=True,
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store URL (default: $ELEXIRION_STORE, else .elexirion/elexirion.db)."
    ),
]
LibraryOption = Annotated[
    Path | None,
    typer.Option(
        "--library-dir",
        help="The user library (default: $ELEXIRION_LIBRARY_DIR, else .elexirion/library).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON value.")]


def store_url(option: str | None) -> str:
    """``--store``, else ``$ELEXIRION_STORE``, else the SQLite file under ``.elexirion``."""
    return (
        option
        or os.environ.get("ELEXIRION_STORE")
        or f"sqlite:///{Path('.elexirion/elexirion.db').resolve()}"
    )


def _library_dir(option: Path | None) -> Path:
    from pipelines.dna import user_library_dir

    return option if option is not None else user_library_dir()


def _call(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``work``; map failures to exit codes (2 user error, 1 runtime) with one message."""
    try:
        return asyncio.run(work())
    except (ConfigError, StoreConfigError) as exc:
        console_error(str(exc), kind="invalid request")
        raise typer.Exit(2) from None
    except (RunError, StoreError, OSError) as exc:
        console_error(str(exc), kind="failed")
        raise typer.Exit(1) from None


async def _with_store(url: str, work: Callable[[Any], Awaitable[_T]]) -> _T:
    from store.factory import open_store

    store = await open_store(url)
    try:
        return await work(store)
    finally:
        await store.close()


# ------------------------------------------------------------------ generate


def generate(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    request: Annotated[str, typer.Argument(help="What the pipeline should do.")],
    name: Annotated[
        str | None, typer.Option(help="Pipeline name (default: a slug of the request).")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Draft with this provider (offline: from a template).")
    ] = None,
    library_dir: LibraryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a pipeline for a request, validate and repair it, save it with its DNA."""
    from pipelines.config import load_settings
    from pipelines.genesis import GenesisRound, generate_pipeline, save_generated
    from pipelines.providers.setup import build_registry

    def progress(done: GenesisRound) -> None:
        status = f"{len(done.errors)} problem(s)" if done.errors else "valid"
        _err.print(f"[dim]round {done.number}: {status}[/]")

    async def work() -> dict[str, Any]:
        settings = load_settings()
        registry = build_registry(settings, force=provider)
        try:
            resolution = registry.resolve(provider or settings.default_provider)
            if resolution.note:
                _err.print(f"[dim]{escape(resolution.note)}[/]")
            result = await generate_pipeline(
                request, resolution.provider, name=name, on_round=progress
            )
        finally:
            await registry.aclose()
        saved = await _with_store(
            store_url(store), lambda s: save_generated(result, _library_dir(library_dir), s)
        )
        return {
            "path": str(saved.path),
            "name": saved.name,
            "version": saved.version.version,
            "kind": result.kind,
            "drafted_by": result.drafted_by,
            "provider": result.provider,
            "model": result.model,
            "rounds": result.rounds,
            "round_errors": result.round_errors,
            "steps": len(result.pipeline.workflow.steps),
            "cost_usd": result.cost_usd,
            "dna": saved.version.dna.to_dict(),
        }

    payload = _call(work)
    if as_json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    dna = payload["dna"]
    drafted = (
        f"template ({payload['kind']}, offline)"
        if payload["drafted_by"] == "template"
        else f"{payload['provider']} / {payload['model']}"
    )
    out = _out()
    out.print(f"saved [bold]{escape(payload['path'])}[/]")
    out.print(f"  pipeline  {escape(payload['name'])} ({payload['steps']} steps)")
    out.print(f"  drafted   {escape(drafted)}")
    out.print(f"  rounds    {payload['rounds']}")
    for number, errors in enumerate(payload["round_errors"], start=1):
        for error in errors:
            out.print(f"    round {number}: {escape(error)}", soft_wrap=True)
    out.print(
        f"  dna       {dna['id']} · generation {dna['generation']} · origin {dna['origin']}"
        f" · version {payload['version']}"
    )
    out.print(f"[dim]run it: elexirion run {escape(payload['path'])}[/]", soft_wrap=True)


# ------------------------------------------------------------------ list & lineage


def _fitness_cells(fit: dict[str, Any]) -> list[str]:
    def num(value: Any, fmt: str) -> str:
        return "—" if value is None else fmt.format(value)

    return [
        str(fit["runs"]),
        num(fit["success_rate"], "{:.0%}"),
        num(fit["quality"], "{:.2f}"),
        num(fit["cost_usd"], "${:.4f}"),
        num(fit["latency_ms"], "{:.0f} ms"),
    ]


_FITNESS_COLUMNS = ("runs", "ok", "quality", "cost", "p50")


def _table(*columns: str) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        # Folded, never cut with an ellipsis: names and ids are what people copy.
        table.add_column(column, overflow="fold")
    return table


def _short(dna_id: str) -> str:
    return dna_id[:8]


@pipelines_app.command("list")
def list_pipelines(
    store: StoreOption = None, library_dir: LibraryOption = None, as_json: JsonOption = False
) -> None:
    """Every pipeline of the built-in and user libraries: latest version, DNA, fitness.

    Fitness counts every version's runs and training records; ``lineage`` splits it.
    """
    from pipelines.dna import BUILTIN_LIBRARY, fitness_by_name, library_files, register_library

    dirs = [BUILTIN_LIBRARY, _library_dir(library_dir)]

    async def rows(s: Any) -> list[dict[str, Any]]:
        await register_library(s, dirs)
        files = library_files(dirs)
        fitness = await fitness_by_name(s, list(files))
        found = []
        for name, path in files.items():
            latest = await s.latest_pipeline_version(name)
            found.append(
                {
                    "name": name,
                    "library": "built-in" if path.parent == BUILTIN_LIBRARY else "user",
                    "path": str(path),
                    "version": latest.version if latest else None,
                    "dna": latest.dna.to_dict() if latest else None,
                    "fitness": dict(fitness[name]),
                }
            )
        return found

    found = _call(lambda: _with_store(store_url(store), rows))
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    table = _table("name", "lib", "v", "origin", "gen", "dna", *_FITNESS_COLUMNS)
    for row in found:
        dna = row["dna"] or {}
        table.add_row(
            escape(row["name"]),
            row["library"],
            str(row["version"] or ""),
            str(dna.get("origin", "")),
            str(dna.get("generation", "")),
            _short(str(dna.get("id", ""))),
            *_fitness_cells(row["fitness"]),
        )
    _out().print(table)


@pipelines_app.command()
def lineage(
    name: Annotated[str, typer.Argument(help="A pipeline name, e.g. code_analysis.")],
    store: StoreOption = None,
    library_dir: LibraryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every version of a pipeline, oldest first: parents, generation, origin, fitness."""
    from pipelines import dna as dna_module

    dirs = [dna_module.BUILTIN_LIBRARY, _library_dir(library_dir)]

    async def entries(s: Any) -> list[dict[str, Any]]:
        await dna_module.register_library(s, dirs)
        found = await dna_module.lineage(s, name)
        if not found:
            where = ", ".join(str(d) for d in dirs)
            raise ConfigError(f"no pipeline {name!r} in the libraries ({where}) or the store")
        return [entry.to_dict() for entry in found]

    found = _call(lambda: _with_store(store_url(store), entries))
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    _out().print(f"[bold]{escape(name)}[/]  {len(found)} version(s)")
    table = _table("v", "dna", "parents", "gen", "origin", *_FITNESS_COLUMNS, "created")
    for entry in found:
        dna = entry["dna"]
        table.add_row(
            str(entry["version"]),
            _short(dna["id"]),
            ", ".join(_short(p) for p in dna["parents"]) or "—",
            str(dna["generation"]),
            dna["origin"],
            *_fitness_cells(entry["fitness"]),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["created_at"])),
        )
    _out().print(table)


def register(app: typer.Typer) -> None:
    """Add ``generate`` and the ``pipelines`` group to ``app``."""
    app.command()(generate)
    app.add_typer(pipelines_app, name="pipelines")

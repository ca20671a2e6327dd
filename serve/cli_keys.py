"""CLI commands for API keys: ``keys create``, ``keys list``, ``keys revoke``.

A key is printed once, by ``create``; the store keeps only its hash and prefix, so
``list`` can show neither the key nor anything that leads to it. A revoked key
stops working on a running server within :data:`serve.http.auth.KEY_CACHE_TTL_S`.

Exit codes: 0 done, 2 a user error (bad name or scope, name taken, no such active
key, bad store URL), 1 the store is unreachable. ``--json`` prints one JSON value
on stdout; messages go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serve._render import console_error
from serve.cli_pipelines import store_url
from store.errors import StoreConfigError, StoreError

__all__ = ["keys_app", "register"]

_T = TypeVar("_T")
_err = Console(stderr=True, highlight=False)

keys_app = typer.Typer(
    name="keys",
    help="API keys of the HTTP API and web page: create (shown once), list, revoke.",
    no_args_is_help=True,
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store URL (default: $ELEXIRION_STORE, else .elexirion/elexirion.db)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON value.")]


def _call(url: str, work: Callable[[Any], Awaitable[_T]]) -> _T:
    """Open the store at ``url``, run ``work`` on it, close it; failures become exit codes."""
    from store.factory import open_store

    async def run() -> _T:
        store = await open_store(url)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (ValueError, StoreConfigError) as exc:  # KeyNameTaken is a ValueError
        console_error(str(exc), kind="invalid request")
        raise typer.Exit(2) from None
    except (StoreError, OSError) as exc:
        console_error(str(exc), kind="store unavailable")
        raise typer.Exit(1) from None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _local(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _row(key: Any) -> dict[str, Any]:
    """What may be shown of a stored key: never its hash (nor, as it is not stored, the key)."""
    return {
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "revoked_at": _iso(key.revoked_at),
        "active": key.revoked_at is None,
    }


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scope", help="A scope of the key (repeatable; default: chat)."),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once: it is stored hashed and cannot be shown again."""
    from serve.http.auth import create_key

    raw, key = _call(store_url(store), lambda s: create_key(s, name, scopes or ["chat"]))
    warning = "This key is shown once: store it now. It cannot be shown again."
    if as_json:
        sys.stdout.write(json.dumps({**_row(key), "key": raw}) + "\n")
        _err.print(f"[yellow]{warning}[/]")
        return
    _err.print(f"created API key [bold]{escape(name)}[/] (scopes: {escape(', '.join(key.scopes))})")
    sys.stdout.write(raw + "\n")
    _err.print(f"[yellow]{warning}[/] Use it as: Authorization: Bearer <key>")


@keys_app.command("list")
def list_keys(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """List API keys: name, prefix, scopes, created, last used, revoked (never a key or hash)."""

    async def work(s: Any) -> list[Any]:
        return list(await s.list_api_keys())

    keys = _call(store_url(store), work)
    if as_json:
        sys.stdout.write(json.dumps([_row(k) for k in keys]) + "\n")
        return
    if not keys:
        _err.print("no API keys; create one with `elexirion keys create NAME`")
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("name", "prefix", "scopes", "created", "last used", "status"):
        table.add_column(column, overflow="fold")
    for key in keys:
        status = "active" if key.revoked_at is None else f"revoked {_local(key.revoked_at)}"
        table.add_row(
            escape(key.name),
            escape(key.prefix) + "…",
            escape(",".join(key.scopes)),
            _local(key.created_at),
            _local(key.last_used_at),
            status,
        )
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)


@keys_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The name of the active key to revoke.")],
    store: StoreOption = None,
) -> None:
    """Revoke the active key called NAME; servers refuse it within seconds."""

    async def work(s: Any) -> bool:
        return bool(await s.revoke_api_key(name))

    if not _call(store_url(store), work):
        console_error(
            f"no active API key named {name!r} (see `elexirion keys list`)", kind="not found"
        )
        raise typer.Exit(2)
    _err.print(f"revoked API key [bold]{escape(name)}[/]; running servers refuse it within 5 s")


def register(app: typer.Typer) -> None:
    """Add the ``keys`` command group to the ``elexirion`` CLI."""
    app.add_typer(keys_app)

"""``elexirion serve``: Ray, the tree and the HTTP platform, in one command.

It starts (or joins) Ray, starts (or reuses) the supervision tree, deploys the
Serve application (:mod:`serve.deployment`) and prints where to open the page.
The first start creates an ``admin`` API key and prints a login URL with it,
once (as Jupyter does); later starts say how to make another key. ``--embedded``
serves the same app with uvicorn in this process, no Ray (quick local use).
Ctrl-C stops the app and the tree; Ray itself keeps running (``ray stop``).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from serve._render import console_error

__all__ = ["register"]

os.environ.setdefault("RAY_AUTH_MODE", "token")


#: ``--proxy`` choices, and the variable that turns Serve's HAProxy mode on.
PROXIES = ("auto", "haproxy", "python")
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"


def tree_size(
    shards: int | None, executors: int | None, cpus: int | None = None
) -> tuple[int, int]:
    """Shards and executors for this machine unless given: every actor is a process, and
    on 2 CPUs 2 shards + 1 executor served ~25% more turns/s than 4 + 2
    (scripts/load.py --shards/--executors)."""
    cpus = cpus or os.cpu_count() or 2
    return shards or max(2, cpus), executors or max(1, cpus // 2)


def _store_url(store: str | None) -> str:
    return (
        store
        or os.environ.get("ELEXIRION_STORE")
        or f"sqlite:///{Path('.elexirion/elexirion.db').resolve()}"
    )


def serve_command(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 8000,
    address: Annotated[
        str | None,
        typer.Option(help="Join this Ray cluster (default: the running one, else start one)."),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL: sqlite:///path or postgresql://...")
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="No API keys (only on a loopback address).")
    ] = False,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Serve in this process with uvicorn; no Ray.")
    ] = False,
    replicas: Annotated[int, typer.Option(min=1, help="Ingress replicas.")] = 1,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Session shards (default: one per CPU, at least 2).")
    ] = None,
    executors: Annotated[
        int | None,
        typer.Option(min=1, help="Pipeline executors (default: one per 2 CPUs, at least 1)."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Return once the server is up (it keeps running).")
    ] = False,
    proxy: Annotated[
        str,
        typer.Option(
            help="Serve's HTTP proxy when this command starts Ray: 'haproxy' (about 3x the "
            "requests per CPU; replicas also listen on all interfaces, behind the API keys), "
            "'python' (Serve's own proxy; nothing but --host is bound), or 'auto' (haproxy "
            "with API keys, python with --no-auth). A cluster being joined keeps its own.",
        ),
    ] = "auto",
) -> None:
    """Start the platform: HTTP API, OpenAI-compatible API, web chat and dashboard."""
    from serve.http.app import HttpConfig
    from serve.http.auth import is_loopback

    if no_auth and not is_loopback(host):
        console_error(f"--no-auth needs a loopback host, not {host!r}", kind="refused")
        raise typer.Exit(2)
    if proxy not in PROXIES:
        console_error(f"--proxy: {proxy!r} is not one of {', '.join(PROXIES)}", kind="refused")
        raise typer.Exit(2)
    if no_auth and proxy == "haproxy":
        console_error(
            "--proxy haproxy with --no-auth would serve the API without keys on every "
            "interface (HAProxy mode binds each replica's port on all of them)",
            kind="refused",
        )
        raise typer.Exit(2)
    url = _store_url(store)
    shards, executors = tree_size(shards, executors)
    http = HttpConfig(auth=not no_auth)
    base = f"http://{host}:{port}"
    if embedded:
        _serve_embedded(host, port, url, http, base)
        return
    if proxy == "haproxy" or (proxy == "auto" and http.auth):
        # Read by Serve's controller, proxy and replicas, which inherit it from a Ray
        # head this command starts (set before `ray start`; ignored by a running one).
        os.environ[HAPROXY_ENV] = "1"
    else:
        os.environ.pop(HAPROXY_ENV, None)
    started = time.perf_counter()
    try:
        used = _start_cluster_app(host, port, address, url, http, replicas, shards, executors)
        key = asyncio.run(_admin_key(None)) if http.auth else None
    except Exception as exc:  # noqa: BLE001 - one line on what failed
        console_error(
            str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc),
            kind="serve failed",
        )
        raise typer.Exit(1) from None
    _announce(base, key, http, time.perf_counter() - started, proxy=used)
    if detach:
        return
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("stopping the app and the tree…")
        _stop_cluster_app()


def _start_cluster_app(  # noqa: PLR0917 - the command's options, passed on
    host: str,
    port: int,
    address: str | None,
    url: str,
    http: Any,
    replicas: int,
    shards: int,
    executors: int,
) -> str:
    """Deploys the app; returns which HTTP proxy serves it (for the announcement)."""
    import logging

    from ray import serve

    from actors.app import connect, start_tree, tree_status

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # its INFO lines are for Ray logs
    from actors.config import TreeConfig
    from serve.cli_tree import provider_env
    from serve.deployment import APP_NAME, ServeSettings, build_application

    info = connect(address)
    if info.get("started_head") and os.environ.get(HAPROXY_ENV) == "1":
        _check_haproxy_ports()
    workspace = str(Path.cwd())
    start_tree(
        TreeConfig(
            store_url=url,
            shards=shards,
            executors=executors,
            provider_env=provider_env(),
            workspace=workspace,
        )
    )
    tree = tree_status() or {}
    sessions = next((c for c in tree.get("children", []) if c.get("path") == "sessions"), {})
    settings = ServeSettings(host=host, port=port, replicas=replicas)
    serve.start(
        http_options={
            "host": host,
            "port": port,
            "request_timeout_s": settings.request_timeout_s,
        }
    )
    app = build_application(
        settings,
        shards=len(sessions.get("children", [])) or shards,
        workspace=workspace,
        http=http,
    )
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    if not info.get("started_head"):
        return "as the running Ray cluster was started"
    return "HAProxy" if os.environ.get(HAPROXY_ENV) == "1" else "Serve's Python proxy"


def _check_haproxy_ports() -> None:
    """Serve's HAProxy needs its stats and metrics ports; an haproxy left by an earlier
    Serve whose Ray was stopped without ``serve shutdown`` keeps them, and Serve then
    fails with a bare ``HAProxyManager.ready()``. Say which process holds them."""
    import psutil
    from ray.serve._private import constants

    ports = {constants.RAY_SERVE_HAPROXY_STATS_PORT, constants.RAY_SERVE_HAPROXY_METRICS_PORT}
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports:
            try:
                holder = f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
            except (psutil.Error, TypeError):
                holder = "another process"
            raise RuntimeError(
                f"port {conn.laddr.port}, which Serve's HAProxy needs, is taken by {holder}"
                " — an haproxy left by an earlier Serve? Stop it, or use --proxy python"
            )


def _stop_cluster_app() -> None:
    from ray import serve

    from actors.app import stop_tree

    serve.shutdown()
    stop_tree()


async def _admin_key(store: Any) -> str | None:
    from actors.store_actor import StoreClient
    from serve.http.auth import ensure_admin_key

    return await ensure_admin_key(store or StoreClient())


def _announce(
    base: str, key: str | None, http: Any, seconds: float, *, proxy: str = "none (embedded)"
) -> None:
    from serve.http.auth import login_url

    typer.echo(f"Elexirion is up in {seconds:.1f} s  (HTTP proxy: {proxy})")
    typer.echo(f"  API:        {base}/api  (OpenAPI: {base}/openapi.json, docs: {base}/docs)")
    typer.echo(f"  OpenAI API: {base}/v1")
    typer.echo(f"  dashboard:  {base}/dashboard")
    if not http.auth:
        typer.echo(f"Open {base}/  (no API keys: --no-auth)")
    elif key is not None:
        typer.echo("An admin API key was created; it is shown this once. Open this URL to log in:")
        typer.echo(f"  {login_url(base, key)}")
    else:
        typer.echo(
            f"Open {base}/login?token=<your key>  (an admin key exists already; make another "
            "with `elexirion keys create NAME`)"
        )


def _serve_embedded(host: str, port: int, url: str, http: Any, base: str) -> None:
    import uvicorn

    from serve.http.app import create_app
    from serve.http.local_platform import LocalPlatform

    async def main() -> None:
        platform = await LocalPlatform(url, workspace=str(Path.cwd())).start()
        key = await _admin_key(platform.store) if http.auth else None
        _announce(base, key, http, 0.0)
        server = uvicorn.Server(
            uvicorn.Config(create_app(platform, http), host=host, port=port, log_level="warning")
        )
        try:
            await server.serve()
        finally:
            await platform.close()

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)

"""Starting, inspecting and stopping the application tree from a driver (the CLI).

``start_tree`` is idempotent: when ``elexirion/app`` is already up it is reused.
The root is a detached actor, so the tree outlives the command that started it;
every other actor is a (non-detached) child of its supervisor and dies with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ray

from actors._ray import NAMESPACE, ActorRef, actor_name, lookup
from actors.config import TreeConfig
from actors.sessions import shard_for

__all__ = ["TreeClient", "connect", "execute_on_cluster", "start_tree", "stop_tree", "tree_status"]

ROOT = "app"


def connect(
    address: str | None = None, *, start_local: bool = True, num_cpus: int | None = None
) -> dict[str, Any]:
    """Join the Ray cluster at ``address`` (``auto``: the running one), or start a
    local head with ``ray start`` when none runs. Returns the dashboard URL, the GCS
    address and ``started_head`` (whether this call started Ray).

    Token auth stays on: callers set ``RAY_AUTH_MODE=token`` before importing ray
    (see :mod:`serve.cli_tree`); Ray reads it once, at import.
    """
    if ray.is_initialized():
        return {**_context_info(None), "started_head": False}
    target = address or "auto"
    try:
        context = ray.init(address=target, namespace=NAMESPACE, **_QUIET)
    except ConnectionError:
        if address not in (None, "auto") or not start_local:
            raise
        _start_head(num_cpus)
        context = ray.init(address="auto", namespace=NAMESPACE, **_QUIET)
        return {**_context_info(context), "started_head": True}
    return {**_context_info(context), "started_head": False}


#: A CLI command is a driver: the tree's actors log to Ray's log files (and the
#: dashboard), not into the user's terminal.
_QUIET: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}


def _start_head(num_cpus: int | None) -> None:
    # Not Ray's default 6379: that is Redis's port, and machines here run Redis.
    command = [
        "ray",
        "start",
        "--head",
        f"--port={_free_port()}",
        "--dashboard-host=127.0.0.1",
        "--disable-usage-stats",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    exe = str(Path(sys.executable).parent / "ray")
    subprocess.run([exe, *command[1:]], check=True, env=env, capture_output=True, timeout=120)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _context_info(context: Any) -> dict[str, Any]:
    url = getattr(context, "dashboard_url", None) if context is not None else None
    return {
        "dashboard_url": f"http://{url}" if url and not str(url).startswith("http") else url,
        "address": ray.get_runtime_context().gcs_address,
    }


def start_tree(config: TreeConfig, *, timeout_s: float = 600.0) -> Any:
    """Create (or find) the detached root and wait until every child answers."""
    from actors.remote import actor_class
    from actors.tree import ON_HEAD, tree_children

    existing = lookup(ROOT)
    if existing is not None:
        ray.get(existing.ready.remote(), timeout=timeout_s)
        return existing
    root = (
        actor_class("supervisor")
        .options(
            name=actor_name(ROOT),
            namespace=NAMESPACE,
            lifetime="detached",
            num_cpus=0,
            max_restarts=0,
            max_concurrency=1000,
            **ON_HEAD,
        )
        .remote(ROOT, tree_children(config), "one_for_one", config.max_restarts, config.period_s)
    )
    ray.get(root.ready.remote(), timeout=timeout_s)
    return root


def stop_tree(timeout_s: float = 60.0) -> bool:
    """Orderly shutdown (children in reverse order), then the root itself."""
    root = lookup(ROOT)
    if root is None:
        return False
    try:
        ray.get(root.stop.remote(), timeout=timeout_s)
    finally:
        ray.kill(root, no_restart=True)
    return True


def tree_status(timeout_s: float = 30.0) -> dict[str, Any] | None:
    root = lookup(ROOT)
    if root is None:
        return None
    return dict(ray.get(root.tree.remote(), timeout=timeout_s))


def flatten(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree as rows: path, actor class, node, pid, state, restarts, uptime."""
    rows = [
        {
            "path": tree.get("path", ROOT),
            "class": tree.get("class", "Supervisor"),
            "node": tree.get("node"),
            "pid": tree.get("pid"),
            "state": tree.get("state", "running"),
            "restarts": tree.get("restarts", 0),
            "uptime_s": tree.get("uptime_s"),
        }
    ]
    for child in tree.get("children", []):
        rows.extend(flatten(child))
    return rows


class TreeClient:
    """What a driver or the HTTP ingress calls on the tree (async)."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self._shards = [ActorRef(f"sessions/shard-{i}", deadline_s=20.0) for i in range(shards)]
        self._executors = ActorRef("executors", deadline_s=20.0)

    async def chat(self, session_id: str, message: str, *, turn_id: str) -> dict[str, Any]:
        """One chat turn; safe to re-send with the same ``turn_id`` after a failure."""
        shard = self._shards[shard_for(session_id, self.shards)]
        return dict(await shard.call("chat", session_id, message, turn_id))

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        return list(
            await self._shards[shard_for(session_id, self.shards)].call("history", session_id)
        )

    async def run(
        self,
        pipeline: Any,
        inputs: dict[str, Any],
        *,
        run_id: str | None = None,
        node: str | None = None,
    ) -> dict[str, Any]:
        return dict(await self._executors.call("run", pipeline, inputs, run_id, node))


def execute_on_cluster(
    pipeline: Any,
    inputs: dict[str, Any],
    node: str | None = None,
    *,
    run_id: str | None = None,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Run a pipeline (library name or ``{"yaml", "source"}``) on the least-loaded
    executor, or on one on ``node`` (a node id); blocks until it finishes."""
    ref = ActorRef("executors", deadline_s=30.0)
    return dict(ref.call_sync("run", pipeline, inputs, run_id, node, timeout_s=timeout_s))

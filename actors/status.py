"""``elexirion status``: the tree's actors, joined with what Ray's state API knows.

Our supervisors know paths, restart counts and uptimes; Ray's state API (served
by the dashboard) knows each actor's class, node, pid and state. Without a
dashboard the actors' own ``info()`` answers fill in class, node and pid.
"""

from __future__ import annotations

from typing import Any

from actors._ray import NAMESPACE, actor_name
from actors.app import flatten, tree_status

__all__ = ["status_rows"]


def status_rows() -> list[dict[str, Any]] | None:
    """One row per actor: path, class, node, pid, state, restarts, uptime_s."""
    tree = tree_status()
    if tree is None:
        return None
    rows = flatten(tree)
    state_api = _ray_state()
    for row in rows:
        known = state_api.get(actor_name(row["path"]))
        if known:
            row["class"] = known.get("class_name") or row["class"]
            row["pid"] = known.get("pid") or row["pid"]
            row["node"] = known.get("node_id") or row["node"]
            row["state"] = str(known.get("state", row["state"])).lower()
            row["source"] = "ray state api"
        row["uptime"] = row.pop("uptime_s", None)
    return [
        {k: row.get(k) for k in ("path", "class", "node", "pid", "state", "restarts", "uptime")}
        for row in rows
    ]


def _ray_state() -> dict[str, dict[str, Any]]:
    try:
        from ray.util.state import list_actors

        actors = list_actors(
            filters=[("ray_namespace", "=", NAMESPACE), ("state", "=", "ALIVE")],
            limit=10_000,
            raise_on_missing_output=False,
        )
    except Exception:  # noqa: BLE001 - no dashboard: fall back to the actors' own answers
        return {}
    return {
        a.name: {"class_name": a.class_name, "pid": a.pid, "node_id": a.node_id, "state": a.state}
        for a in actors
        if a.name
    }

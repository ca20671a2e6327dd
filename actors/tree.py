"""The application tree's shape: which actors, under which supervisors, where.

:func:`tree_children` is the root's children in start order (ARCHITECTURE.md, "The
supervision tree"); :mod:`actors.remote` holds the actor classes they name by kind.
"""

from __future__ import annotations

from typing import Any

import ray

from actors.config import TreeConfig
from actors.supervisor_actor import ChildDef

__all__ = ["ON_HEAD", "tree_children"]


#: Infrastructure actors stay on the head node (a worker node may be scaled away);
#: executors spread over the nodes. Every Ray head carries this resource.
ON_HEAD = {"resources": {"node:__internal_head__": 0.001}}


def _placement(index: int, config: TreeConfig) -> dict[str, Any]:
    """Executor ``index`` goes to node ``index`` of the alive nodes (workers first), with
    soft affinity: if that node is gone when it (re)starts, any node will do. Ray's
    SPREAD is only a preference and was seen to stack every executor on the head."""
    if not config.spread_executors:
        return {}
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    nodes.sort(key=lambda n: ("node:__internal_head__" in n.get("Resources", {}), n["NodeID"]))
    if not nodes:
        return {}
    node = nodes[index % len(nodes)]["NodeID"]
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True)}


def tree_children(config: TreeConfig) -> list[ChildDef]:
    """The root's children, in start order (ARCHITECTURE.md, "The supervision tree")."""
    shards = [
        ChildDef(
            f"shard-{i}",
            f"sessions/shard-{i}",
            "shard",
            (f"sessions/shard-{i}", i, config.shard_capacity, config.workspace),
            options=ON_HEAD,
        )
        for i in range(config.shards)
    ]
    executors = [
        ChildDef(
            f"executor-{i}",
            f"executors/executor-{i}",
            "executor",
            (f"executors/executor-{i}", f"executor-{i}", config.provider_env),
            options=_placement(i, config),
        )
        for i in range(config.executors)
    ]
    return [
        ChildDef("store", "store", "store", ("store", config.store_url), options=ON_HEAD),
        ChildDef(
            "telemetry",
            "telemetry",
            "telemetry",
            ("telemetry", config.telemetry_flush_s),
            options=ON_HEAD,
        ),
        ChildDef(
            "gateway", "gateway", "gateway", ("gateway", config.provider_env), options=ON_HEAD
        ),
        ChildDef("streams", "streams", "streams", ("streams",), options=ON_HEAD),
        ChildDef(
            "sessions",
            "sessions",
            "supervisor",
            ("sessions", shards, "one_for_one", config.max_restarts, config.period_s),
            type="supervisor",
            options=ON_HEAD,
        ),
        ChildDef(
            "executors",
            "executors",
            "executors",
            ("executors", executors, config.max_restarts, config.period_s),
            type="supervisor",
            shutdown_timeout_s=30.0,
            options=ON_HEAD,
        ),
        *(
            [
                ChildDef(
                    "agents",
                    "agents",
                    "supervisor",
                    (
                        "agents",
                        _agents(config),
                        "rest_for_one",
                        config.max_restarts,
                        config.period_s,
                    ),
                    type="supervisor",
                    options=ON_HEAD,
                )
            ]
            if config.agents
            else []
        ),
        ChildDef("health", "health", "health", ("health",), options=ON_HEAD),
    ]


def _agents(config: TreeConfig) -> list[ChildDef]:
    """rest_for_one over router → general → specialists: a router restart restarts
    every agent after it. The specialists sit under their own one_for_one
    supervisor, so one agent's crash restarts only that agent and never the
    fallback agent that is answering in its place (paths stay ``agents/<name>``)."""
    from actors.agents.models import AGENTS

    def agent(name: str) -> ChildDef:
        return ChildDef(name, f"agents/{name}", "agent", (f"agents/{name}", name), options=ON_HEAD)

    specialists = [agent(name) for name in AGENTS if name != "general"]
    return [
        ChildDef("router", "agents/router", "router", ("agents/router",), options=ON_HEAD),
        agent("general"),
        ChildDef(
            "specialists",
            "agents/specialists",
            "supervisor",
            (
                "agents/specialists",
                specialists,
                "one_for_one",
                config.max_restarts,
                config.period_s,
            ),
            type="supervisor",
            options=ON_HEAD,
        ),
    ]

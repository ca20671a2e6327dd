"""Configuration of the application tree, shipped to every actor that needs it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TreeConfig"]


@dataclass(frozen=True, slots=True)
class TreeConfig:
    """How big the tree is and where its data lives.

    ``provider_env`` is applied to the environment of the actors that call
    providers (executors, gateway) before they read their settings: it carries
    keys and base URLs to processes on other nodes. It is never logged.
    """

    store_url: str = "sqlite:///.elexirion/elexirion.db"
    shards: int = 4
    executors: int = 2
    shard_capacity: int = 10_000
    provider_env: dict[str, str] = field(default_factory=dict, repr=False)
    max_restarts: int = 3
    period_s: float = 5.0
    spread_executors: bool = True
    telemetry_flush_s: float = 1.0
    #: Directory the agents may read (and write after confirmation) when a request
    #: names none; clients normally send their own.
    workspace: str = "."
    #: Run the agents subtree (router + agents). A tree that only runs pipelines
    #: (``elexirion run --cluster``, batch workers) can leave it out.
    agents: bool = True

"""The Ray Serve application: one FastAPI ingress deployment over the running tree.

The ingress holds no state of its own: every request goes to the tree through
named actor handles (:class:`~serve.http.tree_platform.TreePlatform`), so
replicas can be added, removed or restarted freely.

Serve settings, chosen for slow LLM turns (see ``scripts/load.py`` for the
figures): ``max_ongoing_requests`` high (Serve's default of 5 queues everything
behind five 10-second turns; the ingress is async and mostly waits),
``max_queued_requests`` bounded (beyond it Serve answers 503 at once instead of
letting latency grow without limit), a request timeout longer than the longest
turn, and a graceful shutdown that lets turns in flight finish.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ray import serve

__all__ = ["APP_NAME", "ServeSettings", "build_application"]

APP_NAME = "elexirion"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    replicas: int = 1
    max_ongoing_requests: int = 1000
    max_queued_requests: int = 2000
    request_timeout_s: float = 600.0
    graceful_shutdown_timeout_s: float = 60.0


@serve.ingress()
class Ingress:
    """A replica: the FastAPI app over :class:`TreePlatform`."""

    def __init__(self, shards: int, workspace: str, http: dict[str, Any]) -> None:
        from serve.http.tree_platform import TreePlatform

        self._platform = TreePlatform(shards, workspace=workspace)
        self._http = http

    def __serve_build_asgi_app__(self) -> Any:
        from serve.http.app import HttpConfig, create_app

        return create_app(self._platform, HttpConfig(**self._http))


def build_application(settings: ServeSettings, *, shards: int, workspace: str, http: Any) -> Any:
    """The bound application (``serve.run`` it); ``http`` is an ``HttpConfig``."""
    deployment = serve.deployment(
        Ingress,
        name="ingress",
        num_replicas=settings.replicas,
        max_ongoing_requests=settings.max_ongoing_requests,
        max_queued_requests=settings.max_queued_requests,
        graceful_shutdown_timeout_s=settings.graceful_shutdown_timeout_s,
        ray_actor_options={"num_cpus": 0},
    )
    return deployment.bind(shards, workspace, asdict(http))

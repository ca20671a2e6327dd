"""The FastAPI application: ``create_app(platform, config)``.

Routes: ``/api/...`` (:mod:`serve.http.routes_api`), ``/v1/...`` OpenAI-compatible
(:mod:`serve.http.routes_openai`), ``/healthz``, ``/readyz``, ``/metrics``
(:mod:`serve.http.routes_ops`), the web page and dashboard (:mod:`serve.http.pages`).
Every ``/api`` and ``/v1`` route needs an API key unless ``config.auth`` is off
(:mod:`serve.http.auth`); bodies are capped, keys rate-limited, turns in flight
bounded (:mod:`serve.http.limits`). Errors are JSON (:mod:`serve.http.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from serve.http.errors import install_error_handlers
from serve.http.platform import Platform

__all__ = ["API_VERSION", "HttpConfig", "create_app"]

API_VERSION = "1"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """Limits and switches of the HTTP edge (one replica's view)."""

    #: Require ``Authorization: Bearer <key>`` (or the login cookie) on /api and /v1.
    auth: bool = True
    #: Request bodies above this are refused with 413 before they are read whole.
    max_body_bytes: int = 1_048_576
    #: Sustained requests per minute per API key (429 with Retry-After above it).
    rate_per_minute: float = 600.0
    #: Requests a key may send at once above the sustained rate.
    burst: int = 60
    #: Chat turns and runs in flight in this replica before 503 (backpressure).
    max_inflight: int = 1000
    #: A turn that takes longer is answered 504 (and cancelled).
    request_timeout_s: float = 300.0


def create_app(platform: Platform, config: HttpConfig | None = None) -> FastAPI:
    """The app over ``platform``; the caller owns (and closes) the platform."""
    from serve.http import pages, routes_api, routes_openai, routes_ops
    from serve.http.limits import install_limits

    config = config or HttpConfig()
    app = FastAPI(
        title="Elexirion",
        version=API_VERSION,
        description="Chat with Elexirion's agents, run pipelines, watch the platform.",
        docs_url="/docs",
        redoc_url=None,
        # FastAPI's OpenTelemetry hooks look up the global providers on every request
        # (~8% of the ingress CPU under load); our numbers are /metrics and /api/metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.platform = platform
    app.state.config = config
    install_error_handlers(app)
    install_limits(app, config)
    app.include_router(routes_ops.router)
    app.include_router(routes_api.router)
    app.include_router(routes_openai.router)
    app.include_router(pages.router)
    return app


def platform_of(app: Any) -> Platform:
    return app.state.platform  # type: ignore[no-any-return]

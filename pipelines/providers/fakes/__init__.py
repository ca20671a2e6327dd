"""Wire-level fake servers for the Anthropic, Gemini and OpenAI APIs.

Shipped in the package (not only in tests) because benchmarks, chaos runs and
HTTP tests use them; ``elexirion fake-provider`` serves one from the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.providers.fakes._base import (
    FAULTS,
    FakeProviderServer,
    FakeServerState,
    FaultPlan,
    RecordedRequest,
    Reply,
    control_routes,
)

__all__ = [
    "FAULTS",
    "PROTOCOLS",
    "FakeProviderServer",
    "FakeServerState",
    "FaultPlan",
    "RecordedRequest",
    "Reply",
    "app_factory",
]

PROTOCOLS = ("anthropic", "gemini", "openai")


def app_factory(protocol: str) -> Callable[[FakeServerState], Any]:
    """``create_app(state)`` of a protocol, with the control routes added (``/_fake/...``).

    Raises ``ValueError`` for unknown protocols.
    """
    create_app = _protocol_factory(protocol)

    def with_control(state: FakeServerState) -> Any:
        app = create_app(state)
        for route in control_routes(state):
            app.router.routes.insert(0, route)
        return app

    return with_control


def _protocol_factory(protocol: str) -> Callable[[FakeServerState], Any]:
    if protocol == "anthropic":
        from pipelines.providers.fakes.anthropic import create_app
    elif protocol == "gemini":
        from pipelines.providers.fakes.gemini import create_app
    elif protocol == "openai":
        from pipelines.providers.fakes.openai import create_app
    else:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return create_app

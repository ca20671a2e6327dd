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
    """The ``create_app(state)`` of a protocol; raises ``ValueError`` for unknown ones."""
    if protocol == "anthropic":
        from pipelines.providers.fakes.anthropic import create_app
    elif protocol == "gemini":
        from pipelines.providers.fakes.gemini import create_app
    elif protocol == "openai":
        from pipelines.providers.fakes.openai import create_app
    else:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return create_app

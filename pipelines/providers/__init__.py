"""LLM providers behind one protocol (:mod:`pipelines.providers.base`).

``offline`` is always available; real providers are registered in
:class:`pipelines.providers.registry.ProviderRegistry` and chosen per step (imported
from its module: it pulls in the resilience policies, which this package's light
users, such as the fake servers, do not need).
"""

from __future__ import annotations

from pipelines.providers.base import (
    Completion,
    CompletionRequest,
    Message,
    Provider,
    StreamEvent,
    ToolCall,
    ToolSpec,
    Usage,
)
from pipelines.providers.offline import OfflineProvider

__all__ = [
    "Completion",
    "CompletionRequest",
    "Message",
    "OfflineProvider",
    "Provider",
    "StreamEvent",
    "ToolCall",
    "ToolSpec",
    "Usage",
]

"""LLM providers behind one protocol (:mod:`pipelines.providers.base`).

``offline`` is always available; real providers are registered in
:class:`~pipelines.providers.registry.ProviderRegistry` and chosen per step.
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
from pipelines.providers.registry import ProviderRegistry, Resolution

__all__ = [
    "Completion",
    "CompletionRequest",
    "Message",
    "OfflineProvider",
    "Provider",
    "ProviderRegistry",
    "Resolution",
    "StreamEvent",
    "ToolCall",
    "ToolSpec",
    "Usage",
]

"""The provider protocol: one async interface over every LLM backend.

A :class:`Provider` turns a :class:`CompletionRequest` into a :class:`Completion`
(``complete``) or into a sequence of :class:`StreamEvent` ending with the final
completion (``stream``). Requests and results are frozen dataclasses: they are
built inside the runner and pickle across actor boundaries.

Failure semantics: ``complete`` and ``stream`` raise
:class:`pipelines.errors.ProviderError` with a stable ``code`` and ``retryable``
flag; nothing else escapes a conforming provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Completion",
    "CompletionRequest",
    "Message",
    "Provider",
    "StreamEvent",
    "ToolCall",
    "ToolSpec",
    "Usage",
]

Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asks us to make: ``name`` with JSON ``arguments``."""

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation message.

    ``tool_calls`` appear on assistant messages that request tools; a ``tool``
    message answers the call ``tool_call_id`` with ``content``.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: name, description and JSON Schema of its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """Everything a provider needs for one call.

    ``output_schema`` asks for a JSON object valid against that JSON Schema;
    the provider puts it in :attr:`Completion.data`. ``extra`` carries
    provider-specific sampling keys (``top_p``, ``top_k``) untouched.
    """

    messages: tuple[Message, ...]
    system: str | None = None
    model: str | None = None
    max_tokens: int = 4096
    temperature: float | None = None
    tools: tuple[ToolSpec, ...] = ()
    output_schema: Mapping[str, Any] | None = None
    timeout_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_prompt(cls, prompt: str, **kwargs: Any) -> CompletionRequest:
        """A single-user-message request."""
        return cls(messages=(Message("user", prompt),), **kwargs)

    @property
    def prompt_text(self) -> str:
        """All message contents joined: what a prompt-derived provider reads."""
        return "\n\n".join(m.content for m in self.messages if m.content)


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of one call.

    ``data`` holds the parsed object when the request had an ``output_schema``.
    ``cost_usd`` comes from the price table; ``latency_ms`` is wall time of the call.
    ``attempts`` counts tries of the provider that answered; ``fallback_from`` names
    the providers of the chain that failed before it, in order.
    """

    text: str
    provider: str
    model: str
    usage: Usage = Usage()
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    finish_reason: FinishReason = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    data: Any = None
    attempts: int = 1
    fallback_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One item of a stream: a text ``delta``, or the final ``completion`` (last event)."""

    delta: str = ""
    completion: Completion | None = None


@runtime_checkable
class Provider(Protocol):
    """An LLM backend. ``name`` is what results report as ``provider``."""

    name: str

    async def complete(self, request: CompletionRequest) -> Completion:
        """Run one call to completion; raises ``ProviderError``."""
        ...

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas, then one event carrying the final completion."""
        ...

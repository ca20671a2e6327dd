"""Translation between our provider types and the Anthropic Messages API (SDK types).

Used only by :mod:`pipelines.providers.anthropic`:

- :func:`build_request` turns a :class:`CompletionRequest` into the keyword
  arguments of ``messages.create`` (:class:`WireRequest`);
- :func:`interpret` turns response content blocks into text, tool calls and
  structured data, whether they came whole (``complete``) or were assembled from
  stream events by :class:`StreamAssembler`;
- :func:`map_error` turns any exception raised by the SDK (or by its HTTP layer,
  which it does not wrap while a stream is being read) into a ``ProviderError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
from anthropic import NotGiven, Omit, not_given, omit
from anthropic.types import (
    ContentBlock,
    InputJSONDelta,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
    RefusalStopDetails,
    TextBlock,
    TextBlockParam,
    TextDelta,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlock,
    ToolUseBlockParam,
)

from pipelines.errors import ProviderError
from pipelines.providers._errors import error_for_status, parse_retry_after, provider_error
from pipelines.providers.base import CompletionRequest, FinishReason, Message, ToolCall, Usage

__all__ = [
    "PROVIDER",
    "STRUCTURED_DESCRIPTION",
    "STRUCTURED_TOOL",
    "Interpreted",
    "StreamAssembler",
    "WireRequest",
    "build_request",
    "interpret",
    "map_error",
    "text_and_tools",
    "to_wire_messages",
    "usage_of",
]

PROVIDER = "anthropic"
STRUCTURED_TOOL = "structured_output"
STRUCTURED_DESCRIPTION = "Return the final answer as structured data"
WRAPPED_KEY = "result"  # holds a non-object answer: tool inputs must be objects

# Error types of an SSE `error` event, which arrives inside a 200 response.
_ERROR_TYPE_CODES: Mapping[str, str] = {
    "rate_limit_error": "rate_limited",
    "overloaded_error": "overloaded",
    "api_error": "server_error",
    "timeout_error": "timeout",
    "authentication_error": "auth",
    "permission_error": "auth",
}
_STOP_REASONS: Mapping[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}


# ------------------------------------------------------------------------ requests


@dataclass(frozen=True, slots=True)
class WireRequest:
    """The keyword arguments of one ``messages.create`` call."""

    model: str
    max_tokens: int
    messages: list[MessageParam]
    system: str | Omit = omit
    tools: list[ToolParam] | Omit = omit
    tool_choice: ToolChoiceParam | Omit = omit
    # The 2.14 SDK dropped temperature/top_p/top_k from `create`; the API still takes them.
    extra_body: dict[str, object] | None = None
    timeout: float | NotGiven = not_given


def build_request(request: CompletionRequest, *, model: str, max_tokens: int) -> WireRequest:
    """The wire form of ``request`` for ``model``; raises ``ProviderError(invalid_request)``
    for a conversation the API cannot express (a tool message without ``tool_call_id``)."""
    tools: list[ToolParam] = [
        {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
        for t in request.tools
    ]
    choice: ToolChoiceParam | Omit = omit
    if request.output_schema is not None:
        tools.append(
            {
                "name": STRUCTURED_TOOL,
                "description": STRUCTURED_DESCRIPTION,
                "input_schema": structured_schema(request.output_schema),
            }
        )
        # Alone it is forced; beside real tools the model may call those first.
        choice = {"type": "tool", "name": STRUCTURED_TOOL} if len(tools) == 1 else {"type": "any"}
    sampling = {
        "temperature": request.temperature,
        "top_p": request.extra.get("top_p"),
        "top_k": request.extra.get("top_k"),
    }
    extra: dict[str, object] = {k: v for k, v in sampling.items() if v is not None}
    return WireRequest(
        model=model,
        max_tokens=max_tokens,
        messages=to_wire_messages(request.messages),
        system=request.system if request.system else omit,
        tools=tools or omit,
        tool_choice=choice,
        extra_body=extra or None,
        timeout=request.timeout_s if request.timeout_s is not None else not_given,
    )


def structured_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``structured_output`` input schema: ``schema`` itself when it describes an
    object, else an object whose one property ``result`` is ``schema`` (the API
    accepts only object tool inputs). ``$defs`` stay at the root so refs resolve."""
    if not _wrapped(schema):
        return dict(schema)
    roots = ("$defs", "definitions", "$schema")
    inner = {k: v for k, v in schema.items() if k not in roots}
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {WRAPPED_KEY: inner},
        "required": [WRAPPED_KEY],
        "additionalProperties": False,
    }
    return wrapper | {k: schema[k] for k in roots[:2] if k in schema}


def _wrapped(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") != "object"


def to_wire_messages(messages: Sequence[Message]) -> list[MessageParam]:
    """Our messages as API messages: consecutive ``tool`` messages become one user
    message of ``tool_result`` blocks; assistant tool calls become ``tool_use`` blocks."""
    wire: list[MessageParam] = []
    results: list[ToolResultBlockParam] = []
    for message in messages:
        if message.role == "tool":
            if not message.tool_call_id:
                raise provider_error(
                    "a tool message needs the tool_call_id it answers",
                    code="invalid_request",
                    provider=PROVIDER,
                )
            result: ToolResultBlockParam = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
            }
            if message.content:  # the API rejects empty text; an absent content is allowed
                result["content"] = message.content
            results.append(result)
            continue
        if results:
            wire.append({"role": "user", "content": results})
            results = []
        if message.role == "assistant" and message.tool_calls:
            blocks: list[TextBlockParam | ToolUseBlockParam] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
                for c in message.tool_calls
            )
            wire.append({"role": "assistant", "content": blocks})
        elif message.role == "assistant":
            wire.append({"role": "assistant", "content": message.content})
        else:
            wire.append({"role": "user", "content": message.content})
    if results:
        wire.append({"role": "user", "content": results})
    return wire


# ----------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class Interpreted:
    """What a response means to us."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    data: Any
    finish_reason: FinishReason


def interpret(
    blocks: Iterable[TextBlock | ToolUseBlock],
    stop_reason: str | None,
    *,
    output_schema: Mapping[str, Any] | None,
    refusal: RefusalStopDetails | None = None,
) -> Interpreted:
    """Text, tool calls and structured data of a response.

    When the request had an ``output_schema``, a ``structured_output`` call becomes
    ``data`` (unwrapped, see :func:`structured_schema`) and ``text`` is its JSON; it
    never appears in ``tool_calls``. Raises
    ``ProviderError(content_filtered)`` when the model refused.
    """
    if stop_reason == "refusal":
        category = f" (category {refusal.category})" if refusal and refusal.category else ""
        raise provider_error(
            f"the model refused to answer{category}", code="content_filtered", provider=PROVIDER
        )
    texts: list[str] = []
    calls: list[ToolCall] = []
    data: Any = None
    for block in blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif output_schema is not None and block.name == STRUCTURED_TOOL:
            if data is None:  # a repeated call is not a tool for the caller to run
                data = block.input.get(WRAPPED_KEY) if _wrapped(output_schema) else block.input
        else:
            calls.append(ToolCall(id=block.id, name=block.name, arguments=block.input))
    finish: FinishReason = _STOP_REASONS.get(stop_reason or "end_turn", "stop")
    if calls:
        finish = "tool_calls"
    elif finish == "tool_calls":
        finish = "stop"  # only structured_output was called: nothing left for the caller to run
    text = json.dumps(data, ensure_ascii=False) if data is not None else "".join(texts)
    return Interpreted(text, tuple(calls), data, finish)


def text_and_tools(content: Iterable[ContentBlock]) -> list[TextBlock | ToolUseBlock]:
    """The blocks we act on; thinking and server-tool blocks are not ours to report."""
    return [b for b in content if isinstance(b, TextBlock | ToolUseBlock)]


def usage_of(usage: anthropic.types.Usage) -> Usage:
    """Our usage: the API counts cached prompt tokens apart; all of them are input."""
    cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    return Usage(usage.input_tokens + cached, usage.output_tokens)


@dataclass(slots=True)
class StreamAssembler:
    """Builds the response from stream events, in the order the API sends them.

    :meth:`feed` returns the text delta an event carries ("" for the others).
    Raises ``ProviderError(server_error)`` for tool input that is not valid JSON.
    """

    model: str = ""
    stop_reason: str | None = None
    refusal: RefusalStopDetails | None = None
    usage: Usage = field(default_factory=Usage)
    finished: bool = False
    _blocks: dict[int, TextBlock | ToolUseBlock] = field(default_factory=dict)
    _json: dict[int, list[str]] = field(default_factory=dict)

    def feed(self, event: RawMessageStreamEvent) -> str:
        if isinstance(event, RawMessageStartEvent):
            self.model = event.message.model
            self.usage = usage_of(event.message.usage)
        elif isinstance(event, RawContentBlockStartEvent):
            block = event.content_block
            if isinstance(block, TextBlock | ToolUseBlock):
                self._blocks[event.index] = block.model_copy()
                self._json[event.index] = []
        elif isinstance(event, RawContentBlockDeltaEvent):
            return self._delta(event)
        elif isinstance(event, RawContentBlockStopEvent):
            self._close(event.index)
        elif isinstance(event, RawMessageDeltaEvent):
            self.stop_reason = event.delta.stop_reason
            self.refusal = event.delta.stop_details
            self.usage = Usage(self.usage.input_tokens, event.usage.output_tokens)
        elif isinstance(event, RawMessageStopEvent):
            self.finished = True
        return ""

    def blocks(self) -> list[TextBlock | ToolUseBlock]:
        return [self._blocks[i] for i in sorted(self._blocks)]

    def _delta(self, event: RawContentBlockDeltaEvent) -> str:
        block, delta = self._blocks.get(event.index), event.delta
        if isinstance(block, TextBlock) and isinstance(delta, TextDelta):
            block.text += delta.text
            return delta.text
        if isinstance(block, ToolUseBlock) and isinstance(delta, InputJSONDelta):
            self._json[event.index].append(delta.partial_json)
        return ""

    def _close(self, index: int) -> None:
        block = self._blocks.get(index)
        if not isinstance(block, ToolUseBlock) or not self._json.get(index):
            return
        raw = "".join(self._json[index])
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise provider_error(
                f"tool {block.name!r}: streamed input is not a JSON object",
                code="server_error",
                provider=PROVIDER,
            )
        block.input = value


# -------------------------------------------------------------------------- errors


def map_error(exc: BaseException, *, secrets: Iterable[str | None]) -> ProviderError:
    """The ``ProviderError`` for anything the SDK or its HTTP layer raised."""
    if isinstance(exc, ProviderError):
        return exc
    status: int | None = None
    retry_after: float | None = None
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status >= 400:
            code = error_for_status(status)
        else:  # an SSE `error` event: the status is the stream's 200, the type says it all
            code = _ERROR_TYPE_CODES.get(str(exc.type), "server_error")
        if code in ("rate_limited", "overloaded"):
            retry_after = parse_retry_after(exc.response.headers)
        detail = exc.api_message or exc.message
        message = f"{type(exc).__name__} (HTTP {status}, {exc.type or 'no error type'}): {detail}"
    elif isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        code, message = "timeout", f"request timed out ({type(exc).__name__})"
    elif isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        code, message = "connection", f"connection failed ({type(exc).__name__}): {exc}"
    elif isinstance(exc, anthropic.APIResponseValidationError):
        status = exc.status_code
        code, message = "server_error", f"response did not match the API schema: {exc.message}"
    elif isinstance(exc, Warning):
        # A warning the warnings filter turned into an error (`-W error`, e.g. the SDK's
        # "model is deprecated"): the same call would raise it again, so not retryable.
        code, message = "invalid_request", f"{type(exc).__name__} raised as an error: {exc}"
    elif isinstance(exc, ValueError):  # json.JSONDecodeError and pydantic's ValidationError
        code, message = "server_error", f"malformed response body ({type(exc).__name__}): {exc}"
    else:
        code, message = "server_error", f"unexpected {type(exc).__name__}: {exc}"
    return provider_error(
        message,
        code=code,
        provider=PROVIDER,
        status=status,
        retry_after_s=retry_after,
        secrets=secrets,
    )

"""Translation between our provider types and the ``google-genai`` SDK types.

Pure functions with no I/O, used by :mod:`pipelines.providers.gemini`:
:func:`contents` and :func:`config` build a ``generate_content`` call from a
:class:`CompletionRequest`; :class:`Answer` folds one response, or the chunks of a
stream, into text, tool calls, a finish reason and usage.

Raises :class:`~pipelines.errors.ProviderError`: ``invalid_request`` for a request
we cannot express (a tool answer to an unknown call, bad ``extra`` values),
``content_filtered`` for a blocked prompt or answer, ``server_error`` for an answer
the model garbled (a malformed function call).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
from google.genai import types

from pipelines.errors import ProviderError
from pipelines.providers._errors import provider_error
from pipelines.providers.base import CompletionRequest, FinishReason, Message, ToolCall, Usage

__all__ = ["Answer", "config", "contents", "synthetic_id"]

PROVIDER = "gemini"

_FINISH: Mapping[str, FinishReason] = {
    "STOP": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "MAX_TOKENS": "length",
}
#: Finish reasons that mean the answer was withheld by a safety or policy filter.
_BLOCKED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
#: Finish reasons that mean the model produced something unusable; a retry may do better.
_GARBLED = frozenset({"MALFORMED_FUNCTION_CALL", "MALFORMED_RESPONSE", "UNEXPECTED_TOOL_CALL"})
_SYNTHETIC_ID = re.compile(r"call_\d+")


def synthetic_id(index: int) -> str:
    """The id we give the ``index``-th function call when the API sent none."""
    return f"call_{index}"


def _api_id(call_id: str | None) -> str | None:
    # Ids we made up mean nothing to the API; only echo the ones it gave us.
    if not call_id or _SYNTHETIC_ID.fullmatch(call_id):
        return None
    return call_id


def _error(message: str, code: str) -> ProviderError:
    return provider_error(message, code=code, provider=PROVIDER)


# ----------------------------------------------------------------------- request


def contents(messages: Iterable[Message]) -> list[types.Content]:
    """Our messages as Gemini ``contents``; raises ``ProviderError(invalid_request)``.

    Assistant turns become role ``model`` with text and ``functionCall`` parts; tool
    answers become ``functionResponse`` parts of a ``user`` turn (the role the API and
    the SDK's own function calling use), consecutive answers sharing one turn so a
    batch of parallel calls is answered together. The function name a response
    needs comes from the earlier assistant call with the same id.
    """
    names: dict[str, str] = {}
    out: list[types.Content] = []
    for message in messages:
        if message.role == "tool":
            part = types.Part(function_response=_function_response(message, names))
            if out and out[-1].role == "user" and _answers_only(out[-1]):
                (out[-1].parts or []).append(part)
            else:
                out.append(types.Content(role="user", parts=[part]))
        elif message.role == "assistant":
            parts = [types.Part(text=message.content)] if message.content else []
            for call in message.tool_calls:
                names[call.id] = call.name
                parts.append(
                    types.Part(
                        function_call=types.FunctionCall(
                            id=_api_id(call.id), name=call.name, args=dict(call.arguments)
                        )
                    )
                )
            if parts:  # the API rejects a turn without parts
                out.append(types.Content(role="model", parts=parts))
        else:
            out.append(types.Content(role="user", parts=[types.Part(text=message.content)]))
    return out


def _answers_only(content: types.Content) -> bool:
    return bool(content.parts) and all(p.function_response for p in content.parts or [])


def _function_response(message: Message, names: Mapping[str, str]) -> types.FunctionResponse:
    call_id = message.tool_call_id
    if not call_id or call_id not in names:
        raise _error(
            f"tool message answers call {call_id!r}, which no earlier assistant message made",
            "invalid_request",
        )
    try:
        parsed: Any = json.loads(message.content)
    except ValueError:
        parsed = None
    # The API wants an object; a plain or non-object result is wrapped.
    response = parsed if isinstance(parsed, dict) else {"content": message.content}
    return types.FunctionResponse(id=_api_id(call_id), name=names[call_id], response=response)


def config(
    request: CompletionRequest, *, max_tokens: int, timeout_s: float | None
) -> types.GenerateContentConfig:
    """The ``GenerateContentConfig`` of ``request``; raises ``ProviderError(invalid_request)``.

    ``max_tokens`` caps the request's own; ``timeout_s`` (if given) overrides the
    client timeout for this call. The SDK's automatic function calling and
    automatic continuation stay off: one call is one HTTP request.
    """
    extra = request.extra
    stop = extra.get("stop_sequences", extra.get("stop"))
    try:
        return types.GenerateContentConfig(
            system_instruction=request.system or None,
            max_output_tokens=min(request.max_tokens, max_tokens),
            temperature=request.temperature,
            top_p=extra.get("top_p"),
            top_k=extra.get("top_k"),
            seed=extra.get("seed"),
            presence_penalty=extra.get("presence_penalty"),
            frequency_penalty=extra.get("frequency_penalty"),
            stop_sequences=[stop] if isinstance(stop, str) else stop,
            thinking_config=(
                types.ThinkingConfig(thinking_budget=extra["thinking_budget"])
                if "thinking_budget" in extra
                else None
            ),
            tools=[_tool(request)] if request.tools else None,
            # response_json_schema takes plain JSON Schema; response_schema would
            # need the OpenAPI subset with upper-case types.
            response_mime_type="application/json" if request.output_schema is not None else None,
            response_json_schema=(
                dict(request.output_schema) if request.output_schema is not None else None
            ),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
            http_options=(
                types.HttpOptions(timeout=milliseconds(timeout_s))
                if timeout_s is not None
                else None
            ),
        )
    except pydantic.ValidationError as exc:
        raise _error(f"request cannot be sent to Gemini: {exc}", "invalid_request") from None


def _tool(request: CompletionRequest) -> types.Tool:
    return types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name=spec.name,
                description=spec.description,
                # Plain JSON Schema, as our ToolSpec holds it (``parameters`` would
                # need the OpenAPI subset).
                parameters_json_schema=dict(spec.parameters) if spec.parameters else None,
            )
            for spec in request.tools
        ]
    )


def milliseconds(seconds: float) -> int:
    """``HttpOptions.timeout`` is whole milliseconds; never round down to 0 (= no timeout)."""
    return max(1, round(seconds * 1000))


# ---------------------------------------------------------------------- response


@dataclass
class Answer:
    """What a response (or the chunks of a stream) said, folded together."""

    text: list[str] = field(default_factory=list)
    calls: list[types.FunctionCall] = field(default_factory=list)
    finish: str | None = None
    blocked: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None

    def add(self, response: types.GenerateContentResponse) -> str:
        """Fold one response or chunk in; return its new text (the stream delta)."""
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            self.blocked = f"prompt blocked: {_name(feedback.block_reason)}"
        if response.usage_metadata is not None:
            # Stream chunks carry running totals: the last one is the whole call.
            meta = response.usage_metadata
            self.usage = Usage(
                meta.prompt_token_count or 0,
                # Thinking tokens are billed as output tokens.
                (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
            )
        self.model = response.model_version or self.model
        if not response.candidates:
            return ""
        candidate = response.candidates[0]
        if candidate.finish_reason is not None:
            self.finish = _name(candidate.finish_reason)
        delta: list[str] = []
        parts = candidate.content.parts if candidate.content is not None else None
        for part in parts or []:
            if part.function_call is not None:
                self.calls.append(part.function_call)
            elif part.text and not part.thought:  # thought summaries are not the answer
                delta.append(part.text)
        self.text.extend(delta)
        return "".join(delta)

    @property
    def done(self) -> bool:
        """Whether the answer reached its end (a finish reason or a blocked prompt)."""
        return self.finish is not None or self.blocked is not None

    def outcome(self) -> tuple[FinishReason, tuple[ToolCall, ...]]:
        """The finish reason and tool calls; raises ``ProviderError`` for a blocked or
        garbled answer."""
        if self.blocked is not None:
            raise _error(self.blocked, "content_filtered")
        finish = self.finish or "STOP"
        if finish in _BLOCKED:
            raise _error(f"answer blocked: finishReason {finish}", "content_filtered")
        if finish in _GARBLED:
            raise _error(f"unusable answer: finishReason {finish}", "server_error")
        calls = tuple(
            ToolCall(
                id=call.id or synthetic_id(i), name=call.name or "", arguments=dict(call.args or {})
            )
            for i, call in enumerate(self.calls)
        )
        if calls:
            return "tool_calls", calls
        return _FINISH.get(finish, "error"), calls


def _name(value: Any) -> str:
    # The SDK gives enum members for known values and plain strings otherwise.
    return str(getattr(value, "value", value))

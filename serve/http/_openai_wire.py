"""OpenAI's wire shapes for :mod:`serve.http.routes_openai`: requests in, markdown out.

Pure functions and pydantic models, no platform calls: the request model, session
ids from the ``X-Session-Id`` header or the ``user`` field, the message and the
transcript of earlier messages, an agent response rendered as markdown, a pipeline's
inputs and the answer text of its run, model cards, approximate usage, SSE framing
and the JSON of an error that happens mid-stream. Raises :class:`ApiError` 422 for
requests it cannot serve.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipelines.observability import get_logger
from pipelines.providers.offline import approx_tokens
from serve.http.errors import ApiError, client_message
from serve.http.platform import Saturated

__all__ = [
    "CREATED",
    "ChatCompletionRequest",
    "ChatMessage",
    "answer_text",
    "joined",
    "model_card",
    "pipeline_inputs",
    "render_response",
    "session_for",
    "split_messages",
    "sse",
    "stream_error",
    "transcript",
    "usage",
    "with_context",
]

_log = get_logger("http.openai")

#: Namespace of the session ids derived from the ``user`` field.
_SESSION_NS = uuid.UUID("6f3c1a52-58d4-4a0e-9d7e-3b1f0c2e8a41")
#: Earlier messages sent along without a session: the last few, at most this long.
_TRANSCRIPT_MESSAGES = 12
_TRANSCRIPT_CHARS = 4000
_MAX_FINDINGS = 50
#: Inputs that take the message when a pipeline requires no string input, in order.
_TEXT_INPUTS = ("message", "request", "text", "prompt", "question", "context")
#: Inputs that take the transcript of the earlier messages, in order.
_CONTEXT_INPUTS = ("history", "context")
#: ``created`` of every model card.
CREATED = int(time.time())


# OpenAI clients send many fields we do not use (temperature, top_p, stop, max_tokens,
# response_format, seed, tool_choice...): they are accepted and ignored, not refused.
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The part of OpenAI's chat completion request that Elexirion honours."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    n: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None


def session_for(header: str | None, user: str | None, user_id: str | None) -> str | None:
    """The session of a request: the header, ``session:<id>``, or a stable id per user.

    Any other ``user`` string maps to a uuid5 of the caller's ``user_id`` and the
    string, so another API key sending the same string gets another session.
    """
    if header and header.strip():
        return header.strip()
    if not user or not user.strip():
        return None
    explicit = user.removeprefix("session:").strip()
    if user.startswith("session:") and explicit:
        return explicit
    return uuid.uuid5(_SESSION_NS, f"{user_id or ''}\x00{user}").hex


def _text(content: str | list[ContentPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    for part in content:
        if part.type != "text":
            message = f"messages: content parts of type {part.type!r} are not supported"
            raise ApiError(422, "invalid_request", message)
    return "".join(part.text or "" for part in content)


def split_messages(messages: Sequence[ChatMessage]) -> tuple[str, list[str]]:
    """The last user message, and the messages before it as ``role: text`` lines.

    Raises :class:`ApiError` 422 without a non-empty user message or for non-text parts.
    """
    texts = [(m.role, _text(m.content)) for m in messages]
    last = max((i for i, (role, _) in enumerate(texts) if role == "user"), default=None)
    if last is None or not texts[last][1].strip():
        raise ApiError(422, "invalid_request", "messages: a non-empty user message is required")
    earlier = [f"{role}: {text.strip()}" for role, text in texts[:last] if text.strip()]
    return texts[last][1], earlier[-_TRANSCRIPT_MESSAGES:]


def transcript(earlier: Sequence[str]) -> str:
    """The earlier messages as text, cut from the front to a few thousand characters."""
    text = "\n".join(earlier)
    return text if len(text) <= _TRANSCRIPT_CHARS else "…" + text[-_TRANSCRIPT_CHARS:]


def with_context(message: str, earlier: Sequence[str]) -> str:
    """``message`` behind a short transcript of the earlier messages (if any)."""
    if not earlier:
        return message
    return f"Earlier in this conversation:\n{transcript(earlier)}\n\n{message}"


def _finding(finding: Mapping[str, Any]) -> str:
    file, line = finding.get("file"), finding.get("line")
    where = f"{file}:{line}" if file and line else str(file or "")
    label = " ".join(str(x) for x in (finding.get("severity") or "info", finding.get("rule")) if x)
    message = str(finding.get("message") or "")
    return " ".join(part for part in ("-", where, f"[{label}]", message) if part)


def render_response(response: Mapping[str, Any]) -> tuple[str, str]:
    """An agent response as markdown: ``(summary, the rest)``, see :func:`joined`.

    The rest: the suggestion, findings as ``- file:line [severity rule] message``
    lines, numbered recommendations.
    """
    sections: list[str] = []
    if response.get("suggestion"):
        sections.append(f"**Suggestion:** {response['suggestion']}")
    findings = [f for f in response.get("findings") or [] if isinstance(f, Mapping)]
    if findings:
        lines = [_finding(f) for f in findings[:_MAX_FINDINGS]]
        if len(findings) > _MAX_FINDINGS:
            lines.append(f"- … and {len(findings) - _MAX_FINDINGS} more")
        sections.append("**Findings**\n" + "\n".join(lines))
    recommendations = response.get("recommendations") or []
    if recommendations:
        numbered = (f"{i}. {text}" for i, text in enumerate(recommendations, 1))
        sections.append("**Recommendations**\n" + "\n".join(numbered))
    return str(response.get("summary") or "").strip(), "\n\n".join(sections)


def joined(head: str, tail: str) -> str:
    """The summary and the rest, a blank line apart."""
    return "\n\n".join(part for part in (head, tail) if part)


def usage(prompt: str, completion: str) -> dict[str, int]:
    """Approximate token counts (4/3 per word): the platform's turns span many calls."""
    prompt_tokens, completion_tokens = approx_tokens(prompt), approx_tokens(completion)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(payload: Mapping[str, Any] | str) -> str:
    """One server-sent event: ``data: <json>`` (or the literal ``[DONE]``)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def stream_error(exc: Exception) -> dict[str, Any]:
    """The error event of a stream that already started (same codes as the handlers)."""
    if isinstance(exc, ApiError):
        code, message = exc.code, exc.message
    elif isinstance(exc, Saturated):
        code, message = "saturated", str(exc)
    elif isinstance(exc, TimeoutError):
        code, message = "timeout", "the platform did not answer in time"
    elif isinstance(exc, LookupError):
        code, message = "not_found", client_message(exc) or "not found"
    elif isinstance(exc, ValueError):
        code, message = "invalid_request", client_message(exc)
    else:
        _log.error("openai_stream_error", error=type(exc).__name__)
        code, message = "internal", "internal error; the server log has the details"
    return {"error": {"code": code, "message": message}}


def model_card(model_id: str) -> dict[str, Any]:
    """An OpenAI model card (``created``: when this process started)."""
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "elexirion"}


def _is_text(spec: Any) -> bool:
    return isinstance(spec, Mapping) and spec.get("type", "string") == "string"


def pipeline_inputs(
    pipeline: Mapping[str, Any], message: str, earlier: Sequence[str]
) -> dict[str, Any]:
    """The inputs of a pipeline run for ``message`` and the earlier messages.

    The message goes to the first required string input, else to the first of
    :data:`_TEXT_INPUTS` the pipeline takes (``code_analysis`` requires nothing and
    reads the request from ``context``). The transcript goes to a ``history`` or
    ``context`` input when there is another one, else in front of the message.
    Raises :class:`ApiError` 422 when the pipeline takes no text at all.
    """
    inputs: Mapping[str, Any] = pipeline.get("inputs") or {}
    required = [n for n, spec in inputs.items() if _is_text(spec) and spec.get("required")]
    named = [n for n in _TEXT_INPUTS if _is_text(inputs.get(n))]
    target = next(iter(required + named), None)
    if target is None:
        message = f"pipeline {pipeline.get('name')!r} takes no text input"
        raise ApiError(422, "invalid_request", message)
    slot = next((n for n in _CONTEXT_INPUTS if n != target and _is_text(inputs.get(n))), None)
    if slot is None:
        return {target: with_context(message, earlier)}
    return {target: message, slot: transcript(earlier)} if earlier else {target: message}


def answer_text(result: Any) -> str:
    """The answer of a run: the last step that wrote text, as markdown when it is
    structured (``summary``, ``findings``...); the whole result as JSON otherwise."""
    results = result.get("results") if isinstance(result, Mapping) else None
    for value in reversed(list((results or {}).values())):
        if isinstance(value, Mapping) and isinstance(value.get("text"), str):
            if isinstance(value.get("summary"), str):
                return joined(*render_response(value))
            return str(value["text"])
    return json.dumps(results if results is not None else result, default=str)

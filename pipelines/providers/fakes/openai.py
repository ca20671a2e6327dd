"""A wire-level fake of the OpenAI Chat Completions API (and its many look-alikes).

Serves ``POST /v1/chat/completions`` (plain JSON or SSE with ``"stream": true``) and
``GET /v1/models``, so the official ``openai`` SDK, pointed at
``http://127.0.0.1:PORT/v1``, works unchanged. Every request needs
``Authorization: Bearer <key>`` (401 otherwise) and is recorded in the state.

What a request gets, in order: a scripted :class:`Reply` or fault kind, a fault
drawn from the :class:`FaultPlan`, else a default answer: a JSON sample of the
``response_format`` schema, a call of the tool ``tool_choice`` forces, or
``fake openai reply: <start of the last user message>``.

Fault kinds: ``429`` (with ``retry-after``/``retry-after-ms``), ``503``/``529``
(overloaded), ``500``, ``401``, ``400``; ``timeout`` hangs ``plan.timeout_s`` (or until
the client leaves) and then answers; ``malformed`` is a 200 with a broken JSON body
(a garbage ``data:`` line in a stream); ``drop`` cuts a stream after its first
content chunk and ``drop_before`` right after the role chunk (both a plain 500
without streaming); ``content_filter`` is a 200 with ``finish_reason:
"content_filter"`` and no content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipelines.errors import ProviderError
from pipelines.providers.fakes._base import FakeServerState, Reply, wait_latency
from pipelines.providers.schema_sample import sample_instance

__all__ = ["MODELS", "create_app"]

#: What ``GET /v1/models`` lists.
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini")

# Small pieces so a stream has several deltas even for a short answer.
_PIECE = 8

#: Fault kind -> HTTP status, message, error type, error code.
_ERRORS: Mapping[str, tuple[int, str, str, str]] = {
    "429": (429, "Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    "503": (503, "The server is overloaded or not ready yet.", "server_error", "overloaded"),
    "529": (529, "The engine is currently overloaded.", "server_error", "overloaded"),
    "500": (
        500,
        "The server had an error while processing your request.",
        "server_error",
        "server_error",
    ),
    "401": (401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    "400": (
        400,
        "Invalid request: the fake was told to refuse it.",
        "invalid_request_error",
        "invalid_request_error",
    ),
}


class _StreamCut(Exception):  # noqa: N818 - an event, not an error of the fake itself
    """Raised inside a stream body so uvicorn aborts the connection mid-response."""


class _QuietCuts(logging.Filter):
    """Drops uvicorn's traceback for the cuts we make on purpose; keeps real errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _StreamCut))


def _install_quiet_cuts() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietCuts) for f in logger.filters):
        logger.addFilter(_QuietCuts())


def create_app(state: FakeServerState) -> Starlette:
    """The Starlette app of one fake OpenAI-compatible server backed by ``state``."""
    _install_quiet_cuts()

    async def models(request: Request) -> Response:
        state.record(request.url.path, dict(request.headers), None)
        if not _bearer(request):
            return _error("401")
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "fake"} for m in MODELS
        ]
        return JSONResponse({"object": "list", "data": data})

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        state.record(request.url.path, dict(request.headers), body)
        if not _bearer(request):
            return _error("401")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error("400", "body must be a JSON object with a 'messages' array")
        await wait_latency(state.plan)
        action = state.next_action()
        if action == "timeout":
            await _hang(request, state.plan.timeout_s)
            action = None
        stream = bool(body.get("stream"))
        if isinstance(action, str) and action in _ERRORS:
            return _error(action, key=_bearer(request), retry_after_s=state.plan.retry_after_s)
        if action in ("drop", "drop_before") and not stream:
            return _error("500")
        if action == "malformed" and not stream:
            return Response('{"id": "chatcmpl-broken", "choices": [', media_type="application/json")
        try:
            answer = _answer(body, action, state.request_count)
        except ProviderError as exc:
            return _error("400", exc.message)
        if not stream:
            return JSONResponse(_completion(body, answer))
        fault = action if isinstance(action, str) else None
        return StreamingResponse(
            _chunks(body, answer, fault, state.plan.stream_chunk_delay_ms),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


# ------------------------------------------------------------------ answers


class _Answer:
    """What the fake replies: text, tool calls (id, name, JSON arguments), finish, usage."""

    def __init__(
        self, text: str, calls: list[tuple[str, str, str]], finish: str, usage: dict[str, int]
    ) -> None:
        self.text = text
        self.calls = calls
        self.finish = finish
        self.usage = usage


def _answer(body: Mapping[str, Any], action: Reply | str | None, n: int) -> _Answer:
    """Build the reply for ``body`` from a scripted ``action`` or the defaults."""
    prompt = _last_user_text(body)
    text = ""
    calls: list[tuple[str, str, str]] = []
    finish = "stop"
    if isinstance(action, Reply):
        text = action.text
        calls = [
            (f"call_{n:04d}_{i}", name, json.dumps(dict(args)))
            for i, (name, args) in enumerate(action.tool_calls)
        ]
        finish = action.finish or ("tool_calls" if calls else "stop")
    elif action == "content_filter":
        finish = "content_filter"
    elif (schema := _response_schema(body)) is not None:
        text = json.dumps(sample_instance(schema, seed=prompt))
    elif (forced := _forced_tool(body)) is not None:
        name, params = forced
        args = sample_instance(params, seed=prompt) if params else {}
        calls = [(f"call_{n:04d}_0", name, json.dumps(args))]
        finish = "tool_calls"
    else:
        text = f"fake openai reply: {prompt[:60]}"
    prompt_tokens = _tokens(json.dumps(body.get("messages", [])))
    completion_tokens = _tokens(text + "".join(c[2] for c in calls))
    if isinstance(action, Reply):
        prompt_tokens = action.input_tokens if action.input_tokens is not None else prompt_tokens
        if action.output_tokens is not None:
            completion_tokens = action.output_tokens
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    return _Answer(text, calls, finish, usage)


def _tokens(text: str) -> int:
    # About four characters a token: plausible numbers, no tokenizer needed.
    return max(1, len(text) // 4)


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _response_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def _forced_tool(body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """(name, parameters) of the tool ``tool_choice`` forces, if it forces one."""
    tools = [t.get("function", {}) for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        for tool in tools:
            if tool.get("name") == wanted:
                return str(wanted), tool.get("parameters") or {}
        return (str(wanted), {}) if wanted else None
    if choice == "required" and tools:
        return str(tools[0].get("name")), tools[0].get("parameters") or {}
    return None


def _completion(body: Mapping[str, Any], a: _Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": a.text or None, "refusal": None}
    if a.calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in a.calls
        ]
    return {
        **_envelope(body, "chat.completion"),
        "choices": [{"index": 0, "message": message, "finish_reason": a.finish, "logprobs": None}],
        "usage": a.usage,
    }


def _envelope(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": kind,
        "created": int(time.time()),
        "model": str(body.get("model") or "gpt-4o-mini"),
        "system_fingerprint": "fp_fake",
    }


# ------------------------------------------------------------------ streaming


async def _chunks(
    body: Mapping[str, Any], a: _Answer, fault: str | None, delay_ms: float
) -> AsyncIterator[bytes]:
    """The SSE body: role chunk, deltas, finish chunk, usage chunk, ``[DONE]``."""
    options = body.get("stream_options")
    with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    head = _envelope(body, "chat.completion.chunk")
    if with_usage:
        head["usage"] = None  # OpenAI sends a null usage on every chunk but the last

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse({**head, "choices": [choice]})

    async def pause() -> None:
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if fault == "drop_before":
        raise _StreamCut("drop_before")
    if fault == "malformed":
        yield b"data: {this is not json\n\n"
        yield b"data: [DONE]\n\n"
        return
    pieces = [a.text[i : i + _PIECE] for i in range(0, len(a.text), _PIECE)]
    for number, piece in enumerate(pieces):
        await pause()
        yield chunk({"content": piece})
        if fault == "drop" and number == 0:
            raise _StreamCut("drop")
    for index, (cid, name, args) in enumerate(a.calls):
        await pause()
        opening = {"name": name, "arguments": ""}
        yield chunk(
            {"tool_calls": [{"index": index, "id": cid, "type": "function", "function": opening}]}
        )
        for start in range(0, len(args), _PIECE):
            fragment = {"arguments": args[start : start + _PIECE]}
            yield chunk({"tool_calls": [{"index": index, "function": fragment}]})
    if fault == "drop":  # nothing to cut after: no content was streamed
        raise _StreamCut("drop")
    await pause()
    yield chunk({}, a.finish)
    if with_usage:
        yield _sse({**head, "choices": [], "usage": a.usage})
    yield b"data: [DONE]\n\n"


def _sse(payload: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


# ------------------------------------------------------------------ errors and auth


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _error(
    fault: str, message: str | None = None, *, key: str = "", retry_after_s: float | None = None
) -> Response:
    status, default, kind, code = _ERRORS[fault]
    text = message or default
    if fault == "401" and key:
        # Echo the key as some servers do, so callers prove they redact it.
        text = f"Incorrect API key provided: {key}."
    headers: dict[str, str] = {}
    if fault == "429" and retry_after_s is not None:
        headers["retry-after"] = str(max(0, round(retry_after_s)))
        headers["retry-after-ms"] = str(round(retry_after_s * 1000))
    return JSONResponse(
        {"error": {"message": text, "type": kind, "param": None, "code": code}},
        status_code=status,
        headers=headers,
    )


async def _hang(request: Request, seconds: float) -> None:
    """Wait ``seconds`` or until the client gives up, whichever comes first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
